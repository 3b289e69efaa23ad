"""Uploaded recordings (a recorded voice, a programme): checked by content, mastered like speech.

A file is taken for what its bytes are, never for its name: an MP3 (an ID3 tag or an
MPEG audio frame), a WAV (RIFF/WAVE) or an Ogg stream, which ffprobe must agree holds
audio. It is decoded by ffmpeg straight to the mastering rate (mono, 22,050 Hz), then
trimmed, band-limited for horns, brought to -16 LUFS and peak-limited like speech.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from pydub import AudioSegment

from audio.master import SAMPLE_RATE, Mastered, MasteringError, export_mp3, master
from audio.render import Speech, file_sha256

ENGINE = "upload"  # how a recording's asset names its source

FORMATS = {"mp3": "MP3", "wav": "WAV", "ogg": "OGG"}
# The whole signal is mastered in memory: 10 minutes take ~0.75 GB and 5 s, 30 minutes
# 2.5 GB (measured); longer programmes are relayed or split until mastering streams.
MAX_SECONDS = 10 * 60
MIN_SECONDS = 0.5


def sniff(head: bytes) -> str | None:
    """The format the first bytes of a file show (mp3, wav, ogg), or None."""
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"OggS"):
        return "ogg"
    return None


def probe(path: Path) -> tuple[str, float]:
    """(ffprobe's format name, duration in seconds) of a file with an audio stream;
    MasteringError for anything else."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "format=format_name,duration:stream=codec_type", "-of", "json", str(path)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    try:
        info = json.loads(proc.stdout or b"{}")
        fmt = info["format"]
        streams = info.get("streams") or []
        duration = float(fmt.get("duration", "nan"))
    except (ValueError, KeyError, TypeError):
        raise MasteringError("ffmpeg cannot read the file as audio") from None
    if proc.returncode != 0 or not streams:
        raise MasteringError("the file holds no audio stream")
    if not duration >= 0:  # NaN: a stream without a known length
        raise MasteringError("the file's duration cannot be read")
    return str(fmt.get("format_name", "")), duration


def check(path: Path) -> str:
    """The format of an uploaded file (mp3, wav or ogg); MasteringError with the reason."""
    with path.open("rb") as f:
        sniffed = sniff(f.read(16))
    if sniffed is None:
        raise MasteringError("the file is not MP3, WAV or OGG audio")
    names, duration = probe(path)
    if sniffed not in names.split(","):
        raise MasteringError(f"the file starts like {FORMATS[sniffed]} but is not one")
    if duration < MIN_SECONDS:
        raise MasteringError(f"the recording is shorter than {MIN_SECONDS} s")
    if duration > MAX_SECONDS:
        raise MasteringError(
            f"the recording lasts {duration / 60:.0f} minutes; the limit is {MAX_SECONDS // 60}"
        )
    return sniffed


def master_recording(path: Path) -> Mastered:
    """Check and master an uploaded recording; raises MasteringError."""
    check(path)
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:a:0",
         "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"],
        capture_output=True, timeout=600, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or not proc.stdout:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio"]
        raise MasteringError(f"ffmpeg could not decode the recording: {detail[0]}")
    pcm = proc.stdout[: len(proc.stdout) // 2 * 2]
    segment = AudioSegment(pcm, frame_rate=SAMPLE_RATE, sample_width=2, channels=1)
    return master([segment], pause_ms=0)


def _store(directory: Path, write: Callable[[Path], None]) -> tuple[Path, str]:
    """Write an MP3 into `directory` under a temporary name, then rename it to its
    checksum; (path, sha256). Nothing half-written stays behind."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".mp3")
    os.close(fd)
    try:
        write(Path(tmp))
        sha256 = file_sha256(Path(tmp))
        path = directory / f"{sha256}.mp3"
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path, sha256


def save_recording(upload: Path, directory: Path, title: str) -> Speech:
    """Master an uploaded file into `directory` as `<sha256>.mp3`; raises MasteringError
    with the reason."""
    mastered = master_recording(upload)
    path, sha256 = _store(directory, lambda tmp: export_mp3(mastered, tmp, title))
    return Speech(
        path=path,
        sha256=sha256,
        duration_seconds=round(len(mastered.segment) / 1000, 3),
        engine=ENGINE,
        voice="",
        spoken_text="",
        loudness_lufs=round(mastered.loudness_lufs, 2),
        true_peak_dbtp=round(mastered.true_peak_dbtp, 2),
    )


def save_tail(source: Path, offset: float, directory: Path) -> tuple[Path, str]:
    """The MP3 `source` from `offset` seconds on (cut at an MP3 frame, not re-encoded),
    stored in `directory` as `<sha256>.mp3`; (path, sha256). Raises MasteringError."""

    def cut(tmp: Path) -> None:
        proc = subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-y", "-ss", f"{offset:.3f}", "-i", str(source),
             "-map", "0:a:0", "-c", "copy", "-id3v2_version", "0", "-write_xing", "0",
             "-f", "mp3", str(tmp)],
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            error = proc.stderr.decode(errors="replace").strip()[-300:]
            raise MasteringError(f"ffmpeg could not cut {source.name}: {error}")

    return _store(directory, cut)
