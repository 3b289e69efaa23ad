"""Bulletin text -> mastered MP3, through a chain of engines and a content-addressed cache."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from pydub import AudioSegment

from audio.master import export_mp3, master
from audio.normalize import normalize
from audio.tts import Engine, TtsError

ENGINE_CHAINS: dict[str, tuple[str, ...]] = {
    "auto": ("gtts", "espeak"),
    "gtts": ("gtts",),
    "espeak": ("espeak",),
}
MASTERING_VERSION = "1"  # part of every cache key: bump it when mastering changes


class RenderError(ValueError):
    """The request itself is wrong (empty text, too long, unknown engine)."""


@dataclass(frozen=True)
class Speech:
    path: Path
    sha256: str
    duration_seconds: float
    engine: str
    voice: str
    spoken_text: str
    fallback_reason: str | None = None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class Renderer:
    """Renders speech into `cache_dir`; an unchanged request is served from the cache."""

    def __init__(
        self,
        cache_dir: Path,
        engines: Mapping[str, Engine],
        max_chars: int = 20000,
        pause_ms: int = 700,
    ) -> None:
        self.cache_dir = cache_dir
        self.engines = engines
        self.max_chars = max_chars
        self.pause_ms = pause_ms

    def render(
        self,
        text: str,
        *,
        title: str,
        engine: str = "auto",
        voice: str = "vi",
        speed: float = 1.0,
        lexicon: Mapping[str, str] | None = None,
    ) -> Speech:
        """Speech for `text`; raises RenderError for bad input, TtsError if every engine fails."""
        if engine not in ENGINE_CHAINS:
            raise RenderError(f"unknown engine {engine!r}; use one of {', '.join(ENGINE_CHAINS)}")
        if not text.strip():
            raise RenderError("the text is empty")
        if len(text) > self.max_chars:
            raise RenderError(f"the text has {len(text)} characters; the limit is {self.max_chars}")
        if not 0.5 <= speed <= 2.0:
            raise RenderError(f"speed must be between 0.5 and 2.0, got {speed}")
        spoken = normalize(text, lexicon)
        paragraphs = [p for p in (line.strip() for line in spoken.split("\n")) if p]
        failures: list[str] = []
        for name in ENGINE_CHAINS[engine]:
            used_voice = voice if name == "espeak" else "vi"
            key = self._key(spoken, name, used_voice, speed, title)
            reason = "; ".join(failures) or None
            cached = self._load(key, reason)
            if cached is not None:
                return cached
            try:
                parts = [self.engines[name].synthesize(p, used_voice, speed) for p in paragraphs]
            except TtsError as exc:
                failures.append(f"{name}: {exc}")
                continue
            return self._store(key, parts, title, name, used_voice, spoken, reason)
        raise TtsError("no engine could speak the text: " + "; ".join(failures))

    def _key(self, spoken: str, engine: str, voice: str, speed: float, title: str) -> str:
        blob = json.dumps([MASTERING_VERSION, spoken, engine, voice, speed, title, self.pause_ms])
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _load(self, key: str, reason: str | None) -> Speech | None:
        meta_path = self.cache_dir / f"{key}.json"
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        path = self.cache_dir / f"{key}.mp3"
        if not path.exists():
            return None
        meta.update(path=path, fallback_reason=reason)
        return Speech(**meta)

    def _store(
        self,
        key: str,
        parts: list[AudioSegment],
        title: str,
        engine: str,
        voice: str,
        spoken: str,
        reason: str | None,
    ) -> Speech:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        segment = master(parts, self.pause_ms)
        path = self.cache_dir / f"{key}.mp3"
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".mp3")
        os.close(fd)
        try:
            export_mp3(segment, Path(tmp), title)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        speech = Speech(
            path=path,
            sha256=file_sha256(path),
            duration_seconds=round(len(segment) / 1000, 3),
            engine=engine,
            voice=voice,
            spoken_text=spoken,
            fallback_reason=reason,
        )
        meta = {k: v for k, v in asdict(speech).items() if k not in ("path", "fallback_reason")}
        atomic_write(self.cache_dir / f"{key}.json", json.dumps(meta).encode("utf-8"))
        return speech
