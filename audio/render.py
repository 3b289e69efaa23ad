"""Bulletin text -> mastered MP3, through a chain of engines and a content-addressed cache."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import unicodedata
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from pydub import AudioSegment

from audio.normalize import normalize
from audio.tts import Engine, EspeakEngine, GttsEngine, PiperEngine, TtsError

ENGINE_CHAINS: dict[str, tuple[str, ...]] = {
    "auto": ("gtts", "piper", "espeak"),
    "gtts": ("gtts",),
    "piper": ("piper",),
    "espeak": ("espeak",),
}
MASTERING_VERSION = "2"  # part of every cache key: bump it when mastering changes
_ALLOWED_SYMBOLS = set("%°º²³&/@#+-–—…“”‘’«»•·×")


class RenderError(ValueError):
    """The request itself is wrong (empty text, too long, unknown engine or voice)."""


@dataclass(frozen=True)
class Speech:
    path: Path
    sha256: str
    duration_seconds: float
    engine: str
    voice: str
    spoken_text: str
    loudness_lufs: float
    true_peak_dbtp: float
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


def unsupported_characters(text: str) -> list[str]:
    """Characters no Vietnamese voice can read: other scripts, emoji, control characters."""
    found: list[str] = []
    for ch in set(unicodedata.normalize("NFC", text)):
        category = unicodedata.category(ch)
        if ch in "\n\t\r" or ch in _ALLOWED_SYMBOLS or category.startswith(("P", "Z", "N")):
            continue
        if category.startswith("L") and unicodedata.name(ch, "").startswith("LATIN"):
            continue
        if category in ("Sc", "Sm") and ord(ch) < 0x2200:
            continue
        found.append(ch)
    return sorted(found)


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

    @property
    def engine_names(self) -> list[str]:
        """The engine chains this server can use: auto, then each configured engine."""
        return ["auto", *(name for name in ENGINE_CHAINS if name in self.engines)]

    @property
    def voices(self) -> list[str]:
        return sorted({v for e in self.engines.values() for v in e.voices})

    def check(self, text: str, engine: str, voice: str, speed: float) -> None:
        """Refuse a bad request before any work; raises RenderError."""
        if engine not in ENGINE_CHAINS:
            raise RenderError(f"unknown engine {engine!r}; use one of {', '.join(ENGINE_CHAINS)}")
        if engine != "auto" and engine not in self.engines:
            raise RenderError(f"the {engine} engine is not configured on this server")
        if voice not in self.voices:
            raise RenderError(f"unknown voice {voice!r}; use one of {', '.join(self.voices)}")
        if not text.strip():
            raise RenderError("the text is empty")
        if len(text) > self.max_chars:
            raise RenderError(f"the text has {len(text)} characters; the limit is {self.max_chars}")
        if not 0.5 <= speed <= 2.0:
            raise RenderError(f"speed must be between 0.5 and 2.0, got {speed}")
        bad = unsupported_characters(text)
        if bad:
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad[:5])
            raise RenderError(f"the text has characters no voice can read: {shown}")

    def render(
        self,
        text: str,
        *,
        title: str,
        engine: str = "auto",
        voice: str = "vi",
        speed: float = 1.0,
        lexicon: Mapping[str, str] | None = None,
        intro: Path | None = None,
        outro: Path | None = None,
    ) -> Speech:
        """Speech for `text`; raises RenderError for bad input, TtsError if every engine fails.
        `intro`/`outro` are jingles already prepared (loudness-matched WAV)."""
        self.check(text, engine, voice, speed)
        spoken = normalize(text, lexicon)
        paragraphs = [p for p in (line.strip() for line in spoken.split("\n")) if p]
        jingles = [file_sha256(p) if p else "" for p in (intro, outro)]
        failures: list[str] = []
        for name in ENGINE_CHAINS[engine]:
            tts = self.engines.get(name)
            if tts is None or voice not in tts.voices:
                continue  # not configured here, or it lacks the voice asked for
            key = self._key(spoken, name, voice, speed, title, jingles)
            reason = "; ".join(failures) or None
            cached = self._load(key, reason)
            if cached is not None:
                return cached
            try:
                parts = self._synthesize(tts, paragraphs, voice, speed)
            except TtsError as exc:
                failures.append(f"{name}: {exc}")
                continue
            return self._store(key, parts, intro, outro, title, name, voice, spoken, reason)
        raise TtsError("no engine could speak the text: " + ("; ".join(failures) or "none fits"))

    @staticmethod
    def _synthesize(
        tts: Engine, paragraphs: list[str], voice: str, speed: float
    ) -> list[AudioSegment]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            spoken = pool.submit(tts.synthesize_paragraphs, paragraphs, voice, speed)
            # Mastering needs numpy, a tenth of a second to import, and its filters worked
            # out: while the engine speaks.
            import audio.master

            audio.master.get_ready()
            return spoken.result()

    def _key(
        self, spoken: str, engine: str, voice: str, speed: float, title: str, jingles: list[str]
    ) -> str:
        blob = json.dumps(
            [MASTERING_VERSION, spoken, engine, voice, speed, title, self.pause_ms, jingles]
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _load(self, key: str, reason: str | None) -> Speech | None:
        meta_path = self.cache_dir / f"{key}.json"
        path = self.cache_dir / f"{key}.mp3"
        if not (meta_path.exists() and path.exists()):
            return None
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta.update(path=path, fallback_reason=reason)
        return Speech(**meta)

    def _store(
        self,
        key: str,
        parts: list[AudioSegment],
        intro: Path | None,
        outro: Path | None,
        title: str,
        engine: str,
        voice: str,
        spoken: str,
        reason: str | None,
    ) -> Speech:
        """Master the parts into the cache, written under a temporary name, then renamed."""
        from audio.master import Mp3Encoder, master  # numpy: only when something is rendered

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.cache_dir / f"{key}.mp3"
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".mp3")
        os.close(fd)
        try:
            jingles = [AudioSegment.from_wav(str(p)) if p else None for p in (intro, outro)]
            pieces = [*parts, *(j for j in jingles if j is not None)]
            seconds = (sum(len(p) for p in pieces) + self.pause_ms * (len(parts) - 1)) / 1000
            # The encoder starts now and gets ready while the speech is mastered.
            with Mp3Encoder(Path(tmp), title, seconds) as encoder:
                mastered = master(parts, self.pause_ms, *jingles)
                encoder.finish(mastered)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        speech = Speech(
            path=path,
            sha256=file_sha256(path),
            duration_seconds=round(len(mastered.segment) / 1000, 3),
            engine=engine,
            voice=voice,
            spoken_text=spoken,
            loudness_lufs=round(mastered.loudness_lufs, 2),
            true_peak_dbtp=round(mastered.true_peak_dbtp, 2),
            fallback_reason=reason,
        )
        meta = {k: v for k, v in asdict(speech).items() if k not in ("path", "fallback_reason")}
        atomic_write(self.cache_dir / f"{key}.json", json.dumps(meta).encode("utf-8"))
        return speech


def default_engines(
    gtts_timeout: float, piper_model: Path | None = None, *, online: bool = True
) -> dict[str, Engine]:
    """gTTS (unless `online` is off: the district does not send text to an outside
    service), espeak-ng, and piper when the administrator gave a voice model."""
    engines: dict[str, Engine] = {"espeak": EspeakEngine()}
    if online:
        engines["gtts"] = GttsEngine(gtts_timeout)
    if piper_model is not None:
        engines["piper"] = PiperEngine(piper_model)
    return engines
