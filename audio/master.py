"""Mastering: trim, mono, level and export a broadcast MP3 with its ID3 title."""

from __future__ import annotations

from pathlib import Path

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

SAMPLE_RATE = 44100
BITRATE = "64k"
TARGET_DBFS = -18.0  # average level of speech; a later pass measures LUFS properly
PEAK_CEILING_DBFS = -1.0
SILENCE_THRESHOLD_DBFS = -50.0


def trim_silence(segment: AudioSegment) -> AudioSegment:
    """Cut leading and trailing silence."""
    start = detect_leading_silence(segment, silence_threshold=SILENCE_THRESHOLD_DBFS)
    end = detect_leading_silence(segment.reverse(), silence_threshold=SILENCE_THRESHOLD_DBFS)
    trimmed: AudioSegment = segment[start : len(segment) - end]
    return trimmed if len(trimmed) > 0 else segment


def level(segment: AudioSegment) -> AudioSegment:
    """Bring speech to the target average level without letting peaks pass the ceiling."""
    if segment.dBFS == float("-inf"):
        return segment
    gain = TARGET_DBFS - segment.dBFS
    gain = min(gain, PEAK_CEILING_DBFS - segment.max_dBFS)
    return segment.apply_gain(gain)


def master(parts: list[AudioSegment], pause_ms: int) -> AudioSegment:
    """Join paragraphs with a pause, as mono at one sample rate, trimmed and levelled."""
    pause = AudioSegment.silent(duration=pause_ms, frame_rate=SAMPLE_RATE)
    joined = AudioSegment.silent(duration=0, frame_rate=SAMPLE_RATE)
    for i, part in enumerate(parts):
        part = trim_silence(part.set_channels(1).set_frame_rate(SAMPLE_RATE))
        joined = joined + (pause if i else AudioSegment.empty()) + part
    return level(joined)


def export_mp3(segment: AudioSegment, path: Path, title: str) -> None:
    """Write a mono MP3 with an ID3 title to `path`."""
    segment.export(
        str(path),
        format="mp3",
        bitrate=BITRATE,
        tags={"title": title},
        id3v2_version="3",
        parameters=["-ac", "1"],
    )
