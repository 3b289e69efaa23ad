"""Speech engines: gTTS (online), piper (a local neural voice), espeak-ng (always offline).

An engine turns spoken text into a pydub AudioSegment or raises TtsError; the renderer
decides which engines to try and records the one that answered.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from pydub import AudioSegment

log = logging.getLogger(__name__)

ESPEAK_VOICES: tuple[str, ...] = ("vi", "vi-vn-x-central", "vi-vn-x-south")
ESPEAK_BASE_WPM = 160
SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
GTTS_CHUNK_CHARS = 400  # sentences are grouped up to this size, one request each
# espeak-ng is given all paragraphs at once with this SSML break between them, then its
# output is cut again at the silences at least PARAGRAPH_GAP_MS long. Its own pauses
# (sentences, commas) stay under 1 s even at half speed.
PARAGRAPH_BREAK_MS = 2500
PARAGRAPH_GAP_MS = 2000
SILENCE_THRESHOLD_DBFS = -50.0  # as the mastering's trimming
# Text in SSML (xml.sax.saxutils.escape would import urllib and http: 30 ms).
SSML_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


class TtsError(Exception):
    """An engine could not produce speech; the message says why."""


class Engine(Protocol):
    name: str
    voices: tuple[str, ...]

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        """Speech for `text`; raises TtsError."""
        ...

    def synthesize_paragraphs(
        self, paragraphs: list[str], voice: str, speed: float
    ) -> list[AudioSegment]:
        """Speech for each paragraph, in order; raises TtsError."""
        ...


def change_tempo(segment: AudioSegment, speed: float) -> AudioSegment:
    """Speak faster or slower without changing the pitch (ffmpeg's atempo)."""
    if abs(speed - 1.0) < 0.01:
        return segment
    wav = io.BytesIO()
    segment.export(wav, format="wav")
    proc = subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", "-", "-af", f"atempo={speed:.3f}", "-f", "wav", "-"],
        input=wav.getvalue(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise TtsError(f"ffmpeg could not change the tempo: {proc.stderr.decode(errors='replace')}")
    return AudioSegment.from_file(io.BytesIO(proc.stdout), format="wav")


def sentence_chunks(text: str, limit: int) -> list[str]:
    """Sentences grouped into chunks of at most `limit` characters (a longer one alone)."""
    chunks: list[str] = []
    for sentence in SENTENCE_END.split(text.strip()):
        if chunks and len(chunks[-1]) + 1 + len(sentence) <= limit:
            chunks[-1] += " " + sentence
        elif sentence:
            chunks.append(sentence)
    return chunks


class EspeakEngine:
    """espeak-ng as a subprocess: always available offline, robotic but intelligible."""

    name = "espeak"
    voices: tuple[str, ...] = ESPEAK_VOICES

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = binary

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        return self._speak(text, voice, speed, ssml=False)

    def synthesize_paragraphs(
        self, paragraphs: list[str], voice: str, speed: float
    ) -> list[AudioSegment]:
        """One espeak-ng process for all paragraphs: its start-up (loading the dictionary)
        costs more than speaking a paragraph. The paragraphs are cut apart again at the
        long SSML breaks between them; if espeak-ng's own pauses cannot be told from
        those breaks, each paragraph is spoken alone."""
        if len(paragraphs) < 2:
            return [self.synthesize(p, voice, speed) for p in paragraphs]
        gap = f'<break time="{PARAGRAPH_BREAK_MS}ms"/>'
        ssml = "<speak>" + gap.join(p.translate(SSML_ESCAPES) for p in paragraphs) + "</speak>"
        parts = split_at_long_silences(self._speak(ssml, voice, speed, ssml=True))
        if len(parts) != len(paragraphs):
            log.warning("espeak-ng paragraphs not found again; speaking them one by one")
            return [self.synthesize(p, voice, speed) for p in paragraphs]
        return parts

    def _speak(self, text: str, voice: str, speed: float, *, ssml: bool) -> AudioSegment:
        if voice not in self.voices:
            raise TtsError(f"unknown espeak-ng voice {voice!r}; use one of {self.voices}")
        if shutil.which(self.binary) is None:
            raise TtsError(f"{self.binary} is not installed (apt-get install espeak-ng)")
        wpm = str(round(ESPEAK_BASE_WPM * speed))
        argv = [
            self.binary,
            "-v",
            voice,
            "-s",
            wpm,
            *(["-m"] if ssml else []),
            "--stdin",
            "--stdout",
        ]
        returncode, wav, err = run_to_memory(argv, text.encode("utf-8"), timeout=300)
        if returncode != 0 or not wav:
            raise TtsError(f"espeak-ng failed: {err.decode(errors='replace').strip()}")
        return AudioSegment.from_file(io.BytesIO(wav), format="wav")


def run_to_memory(argv: list[str], stdin: bytes, timeout: float) -> tuple[int, bytes, bytes]:
    """Run a command; its return code, standard output and error. The output goes to a
    file in memory (Linux's memfd) rather than a pipe: through a pipe of 64 kB, a command
    that writes megabytes waits for this process to read each few kilobytes, and a thread
    reading here gets the interpreter's lock only every few milliseconds while another
    runs Python (the renderer imports numpy while espeak-ng speaks)."""
    if not hasattr(os, "memfd_create"):
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    fd = os.memfd_create("loa-output")
    try:
        proc = subprocess.run(
            argv, input=stdin, stdout=fd, stderr=subprocess.PIPE, timeout=timeout, check=False
        )
        out, size = b"", os.fstat(fd).st_size
        while len(out) < size:  # one read, normally (b"" + more is more itself, no copy)
            more = os.pread(fd, size - len(out), len(out))
            if not more:
                break
            out += more
        return proc.returncode, out, proc.stderr
    finally:
        os.close(fd)


def split_at_long_silences(speech: AudioSegment) -> list[AudioSegment]:
    """The sounds of `speech` separated by silences of at least PARAGRAPH_GAP_MS, measured
    as the mastering trims: 10 ms frames under SILENCE_THRESHOLD_DBFS."""
    import numpy as np  # imported here: the renderer imports it while espeak-ng speaks

    mono = speech.set_channels(1).set_sample_width(2)
    pcm = np.frombuffer(mono.raw_data, dtype=np.int16)
    frame = mono.frame_rate // 100
    frames = len(pcm) // frame
    rows = pcm[: frames * frame].reshape(frames, frame)
    # A few hundred frames at a time: the squares of the whole would be a fresh copy of
    # twice its size (and each of its pages a fault).
    power = np.concatenate(
        [np.square(rows[i : i + 512], dtype=np.float32).mean(axis=1) for i in range(0, frames, 512)]
        or [np.zeros(0, dtype=np.float32)]
    )
    silent = power < (32768 * 10 ** (SILENCE_THRESHOLD_DBFS / 20)) ** 2
    # Runs of silent frames, from edges[0] to edges[1], edges[2] to edges[3], and so on.
    edges = np.flatnonzero(np.diff(silent, prepend=False, append=False))
    runs = edges.reshape(-1, 2)
    gaps = runs[runs[:, 1] - runs[:, 0] >= PARAGRAPH_GAP_MS // 10] * frame
    # Each sound runs from the end of one gap to the start of the next.
    bounds = [0, *gaps.ravel().tolist(), frames * frame]
    rate = mono.frame_rate
    return [
        AudioSegment(pcm[start:end].tobytes(), frame_rate=rate, sample_width=2, channels=1)
        for start, end in zip(bounds[0::2], bounds[1::2], strict=True)
    ]


class GttsEngine:
    """Google Translate's TTS through gTTS: sentence by sentence, each with timeout and retry."""

    name = "gtts"
    voices: tuple[str, ...] = ("vi",)

    # After a failure the engine rests this long: an offline server should not wait for
    # Google's timeouts on every render before falling back.
    REST_SECONDS = 300.0

    def __init__(self, timeout: float, attempts: int = 2, backoff: float = 1.0) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._resting_until = 0.0

    def _request(self, text: str) -> AudioSegment:
        import requests  # imported here: gTTS and requests cost time offline renders skip
        from gtts import gTTS
        from gtts.tts import gTTSError

        for attempt in range(1, self.attempts + 1):
            buf = io.BytesIO()
            try:
                gTTS(text, lang="vi", timeout=self.timeout).write_to_fp(buf)
            except (gTTSError, requests.RequestException, AssertionError) as exc:
                if attempt == self.attempts:
                    raise TtsError(f"gTTS unreachable or refused: {exc}") from exc
                log.info("gTTS attempt %d failed (%s); retrying", attempt, exc)
                time.sleep(self.backoff * attempt)
                continue
            if buf.tell() == 0:
                raise TtsError("gTTS returned no audio")
            buf.seek(0)
            return AudioSegment.from_file(buf, format="mp3")
        raise TtsError("gTTS was not tried")  # attempts < 1

    def synthesize_paragraphs(
        self, paragraphs: list[str], voice: str, speed: float
    ) -> list[AudioSegment]:
        # One request at a time: a district server must not look like a flood.
        return [self.synthesize(p, voice, speed) for p in paragraphs]

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        if voice not in self.voices:
            raise TtsError(f"gTTS has only the voice 'vi', not {voice!r}")
        if time.monotonic() < self._resting_until:
            raise TtsError("gTTS was unreachable a moment ago; not tried again yet")
        spoken = AudioSegment.empty()
        try:
            for chunk in sentence_chunks(text, GTTS_CHUNK_CHARS):
                spoken += self._request(chunk)
        except TtsError:
            self._resting_until = time.monotonic() + self.REST_SECONDS
            raise
        return change_tempo(spoken, speed)


class PiperEngine:
    """A local piper voice model (.onnx with its .onnx.json), chosen by the administrator."""

    name = "piper"
    voices: tuple[str, ...] = ("vi",)

    def __init__(self, model: Path) -> None:
        self.model = model
        self._voice: Any = None

    def _load(self) -> Any:
        if self._voice is None:
            try:
                from piper import PiperVoice
            except ImportError as exc:
                raise TtsError("piper is not installed (pip install 'loa[piper]')") from exc
            if not self.model.is_file():
                raise TtsError(f"the piper voice model {self.model} does not exist")
            try:
                self._voice = PiperVoice.load(str(self.model))
            except Exception as exc:  # onnxruntime and json raise many kinds
                raise TtsError(f"cannot load the piper voice model {self.model}: {exc}") from exc
        return self._voice

    def synthesize_paragraphs(
        self, paragraphs: list[str], voice: str, speed: float
    ) -> list[AudioSegment]:
        # One after the other: onnxruntime already uses every core.
        return [self.synthesize(p, voice, speed) for p in paragraphs]

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        model = self._load()
        from piper import SynthesisConfig

        spoken = AudioSegment.empty()
        for chunk in model.synthesize(text, syn_config=SynthesisConfig(length_scale=1 / speed)):
            spoken += AudioSegment(
                chunk.audio_int16_bytes,
                frame_rate=chunk.sample_rate,
                sample_width=chunk.sample_width,
                channels=chunk.sample_channels,
            )
        if len(spoken) == 0:
            raise TtsError("piper produced no audio")
        return spoken
