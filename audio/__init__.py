"""Text to broadcast-ready speech: normalizer, TTS engines, mastering, playout (no DB, no Flask)."""
