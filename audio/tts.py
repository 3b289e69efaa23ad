"""Speech engines: gTTS (online, with a timeout) and espeak-ng (offline).

An engine turns spoken text into a pydub AudioSegment or raises TtsError; the renderer
decides which engines to try and records the one that answered.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from typing import Protocol

import requests
from gtts import gTTS
from gtts.tts import gTTSError
from pydub import AudioSegment

ESPEAK_VOICES = ("vi", "vi-vn-x-central", "vi-vn-x-south")
ESPEAK_BASE_WPM = 160


class TtsError(Exception):
    """An engine could not produce speech; the message says why."""


class Engine(Protocol):
    name: str

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        """Speech for `text`; raises TtsError."""
        ...


class EspeakEngine:
    """espeak-ng as a subprocess: always available offline, robotic but intelligible."""

    name = "espeak"

    def __init__(self, binary: str = "espeak-ng") -> None:
        self.binary = binary

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        if voice not in ESPEAK_VOICES:
            raise TtsError(f"unknown espeak-ng voice {voice!r}; use one of {ESPEAK_VOICES}")
        if shutil.which(self.binary) is None:
            raise TtsError(f"{self.binary} is not installed (apt-get install espeak-ng)")
        wpm = str(round(ESPEAK_BASE_WPM * speed))
        proc = subprocess.run(
            [self.binary, "-v", voice, "-s", wpm, "--stdin", "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=300,
            check=False,
        )
        if proc.returncode != 0 or not proc.stdout:
            raise TtsError(f"espeak-ng failed: {proc.stderr.decode(errors='replace').strip()}")
        return AudioSegment.from_file(io.BytesIO(proc.stdout), format="wav")


class GttsEngine:
    """Google Translate's TTS through gTTS; every request has a timeout."""

    name = "gtts"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def synthesize(self, text: str, voice: str, speed: float) -> AudioSegment:
        buf = io.BytesIO()
        try:
            gTTS(text, lang="vi", slow=speed < 0.85, timeout=self.timeout).write_to_fp(buf)
        except (gTTSError, requests.RequestException, AssertionError) as exc:
            raise TtsError(f"gTTS unreachable or refused: {exc}") from exc
        if buf.tell() == 0:
            raise TtsError("gTTS returned no audio")
        buf.seek(0)
        return AudioSegment.from_file(buf, format="mp3")
