"""Mastering for horn loudspeakers: mono, trimmed, -16 LUFS, true peak under -1 dBTP.

Loudness is measured with ITU-R BS.1770, the true peak on the 4x oversampled signal
(audio.loudness). Gain is applied, then a look-ahead limiter holds the peaks under the
ceiling, and the loudness is corrected once more for what the limiter took away. The
ceiling keeps 1 dB in hand because MP3 encoding adds overshoot.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from audio.loudness import (
    TRUE_PEAK_SEARCH_DB,
    Signal,
    band_and_k_weighted,
    gated_loudness,
    integrated_loudness,
    loud_samples,
    true_peak,
)

SAMPLE_RATE = 22050  # horns reproduce little above 8 kHz; half the data of 44.1 kHz
BITRATE = "64k"
TARGET_LUFS = -16.0  # as delivered in the MP3
# LAME (ffmpeg's libmp3lame) scales what it encodes by 0.95: measured -0.45 dB on a sine
# and on speech, at every bitrate. Mastering aims that much higher.
ENCODER_GAIN_DB = -0.45
# The limit is -1 dBTP in the MP3; encoding can overshoot by up to ~0.5 dB.
CEILING_DBTP = -2.0 - ENCODER_GAIN_DB
SILENCE_THRESHOLD_DBFS = -50.0
LOOKAHEAD_SECONDS = 0.005
HORN_BAND = (120.0, 7000.0)  # what horn loudspeakers reproduce; the rest only costs power
JINGLE_GAP_MS = 400


class MasteringError(ValueError):
    """The audio cannot be mastered (silent, undecodable)."""


@dataclass(frozen=True)
class Mastered:
    segment: AudioSegment
    loudness_lufs: float
    true_peak_dbtp: float
    pauses: tuple[int, ...] = ()  # sample index of the middle of each paragraph pause


def to_signal(segment: AudioSegment) -> Signal:
    """Mono samples in [-1, 1] at SAMPLE_RATE."""
    mono = segment.set_channels(1).set_frame_rate(SAMPLE_RATE).set_sample_width(2)
    samples: Signal = np.frombuffer(mono.raw_data, dtype=np.int16) / np.float32(32768)
    return samples


def to_segment(x: Signal) -> AudioSegment:
    pcm = np.clip(np.rint(x * np.float32(32767)), -32768, 32767).astype(np.int16)
    return AudioSegment(pcm.tobytes(), frame_rate=SAMPLE_RATE, sample_width=2, channels=1)


def loudness(x: Signal) -> float:
    return integrated_loudness(x, SAMPLE_RATE)


def limiter_gain(
    length: int, index: NDArray[np.intp], peaks: Signal, ceiling_dbtp: float = CEILING_DBTP
) -> Signal | None:
    """A smooth gain curve that holds the given true peaks (at these sample indices) under
    the ceiling, or None if nothing needs holding. Worked out on blocks of a few
    milliseconds: each block's gain is the least any sample within one block of it needs
    (look-ahead and hold), and the curve runs linearly between block centres, never above
    what a sample needs."""
    ceiling = 10 ** (ceiling_dbtp / 20)
    over = peaks > ceiling
    if not over.any():
        return None
    where, need = index[over], ceiling / peaks[over]
    size = max(1, int(LOOKAHEAD_SECONDS * SAMPLE_RATE))
    blocks = -(-length // size)
    block = np.ones(blocks, dtype=np.float32)
    # `where` is sorted: the least need of each block by one reduceat over its runs.
    owner = where // size
    runs = np.flatnonzero(np.diff(owner, prepend=-1))
    block[owner[runs]] = np.minimum.reduceat(need, runs)
    held = block.copy()
    held[1:] = np.minimum(held[1:], block[:-1])
    held[:-1] = np.minimum(held[:-1], block[1:])
    # Between the centres of two blocks the curve runs from one held gain to the other,
    # and both are under every need of either block. Only the blocks near a held one
    # differ from 1: in block k the curve runs from (held[k-1] + held[k]) / 2 at its start
    # through held[k] at its centre to (held[k] + held[k+1]) / 2 at its end.
    near = held < 1
    near[1:] |= held[:-1] < 1
    near[:-1] |= held[1:] < 1
    touched = np.flatnonzero(near)
    offset = (np.arange(size, dtype=np.float32) - size / 2) / size  # from the centre, -0.5..0.5
    here = held[touched][:, None]
    before = held[np.maximum(touched - 1, 0)][:, None]
    after = held[np.minimum(touched + 1, blocks - 1)][:, None]
    neighbour = np.where(offset < 0, before, after)
    gain: Signal = np.ones(blocks * size, dtype=np.float32)
    gain.reshape(blocks, size)[touched] = here + (neighbour - here) * np.abs(offset)
    return gain[:length]


def limit(x: Signal, ceiling_dbtp: float = CEILING_DBTP) -> Signal:
    """x with its true peaks held under the ceiling."""
    index, peaks = loud_samples(x, 10 ** ((ceiling_dbtp - TRUE_PEAK_SEARCH_DB) / 20))
    gain = limiter_gain(len(x), index, peaks, ceiling_dbtp)
    return x if gain is None else x * gain


def normalize_loudness(x: Signal, target: float = TARGET_LUFS) -> tuple[Signal, float, float]:
    """Band-limit for horns, bring to the target loudness and hold the peaks.
    Returns the signal, its loudness and its true peak.

    Filtering happens once: a gain, even the limiter's slow gain curve, commutes with the
    K-weighting closely enough (within 0.1 LU) to measure each attempt by multiplication."""
    band, weighted = band_and_k_weighted(x, SAMPLE_RATE, HORN_BAND)
    measured = gated_loudness(weighted, SAMPLE_RATE)
    if math.isinf(measured):
        raise MasteringError("the audio is silent")
    scale = 10 ** ((target - measured) / 20)
    # Limiting takes loudness away, so the loudness grows slower than the gain: find the
    # gain by the secant method on (gain dB -> loudness), which converges in 2-3 steps,
    # using the samples' own peaks (cheap) near the ceiling, with room for the gain to grow.
    index = np.flatnonzero(np.abs(band) >= 10 ** ((CEILING_DBTP - 4.0) / 20) / scale)
    peaks = np.abs(band[index])
    tried: list[tuple[float, float]] = []
    for _ in range(5):
        curve = limiter_gain(len(band), index, peaks * scale)
        if curve is None:
            measured = gated_loudness(weighted * np.float32(scale), SAMPLE_RATE)
        else:  # in place: a fresh array of the programme's length costs its page faults
            curve *= np.float32(scale)
            measured = gated_loudness(np.multiply(curve, weighted, out=curve), SAMPLE_RATE)
        tried.append((20 * math.log10(scale), measured))
        if abs(measured - target) < 0.15:
            break
        slope = 1.0
        if len(tried) > 1:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            slope = (l1 - l0) / (g1 - g0) if g1 != g0 and l1 != l0 else 1.0
        scale *= 10 ** ((target - measured) / max(slope, 0.1) / 20)
    # Then hold the true (inter-sample) peaks of what this gain brings near the ceiling.
    index, peaks = loud_samples(band, 10 ** ((CEILING_DBTP - 2.0) / 20) / scale)
    gain = _or_one(limiter_gain(len(band), index, peaks * scale))
    out: Signal = band * (scale * gain)
    held_peaks = peaks * scale * (gain[index] if isinstance(gain, np.ndarray) else 1.0)
    top = max(float(held_peaks.max(initial=0.0)), float(np.abs(out).max(initial=0.0)))
    return out, measured, 20 * math.log10(top) if top > 0 else -math.inf


def _or_one(gain: Signal | None) -> Signal | float:
    return 1.0 if gain is None else gain


def trim_silence(segment: AudioSegment) -> AudioSegment:
    """Cut leading and trailing silence."""
    start = detect_leading_silence(segment, silence_threshold=SILENCE_THRESHOLD_DBFS)
    end = detect_leading_silence(segment.reverse(), silence_threshold=SILENCE_THRESHOLD_DBFS)
    trimmed: AudioSegment = segment[start : len(segment) - end]
    return trimmed if len(trimmed) > 0 else segment


def _silence(ms: int) -> Signal:
    return np.zeros(SAMPLE_RATE * ms // 1000, dtype=np.float32)  # float64 would widen all


def master(
    parts: list[AudioSegment],
    pause_ms: int,
    intro: AudioSegment | None = None,
    outro: AudioSegment | None = None,
) -> Mastered:
    """Paragraphs joined by a pause, at the target loudness, between optional jingles."""
    pieces: list[Signal] = []
    pauses: list[int] = []
    length = 0
    for i, part in enumerate(parts):
        if i:
            pieces.append(_silence(pause_ms))
            pauses.append(length + len(pieces[-1]) // 2)
            length += len(pieces[-1])
        pieces.append(to_signal(trim_silence(part)))
        length += len(pieces[-1])
    voice = np.concatenate(pieces) if pieces else _silence(0)
    speech, level, peak = normalize_loudness(voice, TARGET_LUFS - ENCODER_GAIN_DB)
    if intro is None and outro is None:
        return Mastered(
            to_segment(speech), level + ENCODER_GAIN_DB, peak + ENCODER_GAIN_DB, tuple(pauses)
        )
    program = [speech]
    if intro is not None:
        opening = [to_signal(intro), _silence(JINGLE_GAP_MS)]
        shift = sum(len(p) for p in opening)
        pauses = [p + shift for p in pauses]
        program = [*opening, *program]
    if outro is not None:
        program = [*program, _silence(JINGLE_GAP_MS), to_signal(outro)]
    x = limit(np.concatenate(program))  # each part is at the target already
    return Mastered(
        to_segment(x), loudness(x) + ENCODER_GAIN_DB, true_peak(x) + ENCODER_GAIN_DB, tuple(pauses)
    )


def prepare_jingle(path: Path) -> AudioSegment:
    """Decode an uploaded jingle and match it to the speech loudness; raises MasteringError."""
    try:
        segment = AudioSegment.from_file(str(path))
    except Exception as exc:  # pydub raises several kinds for a file that is not audio
        raise MasteringError("the file is not audio that ffmpeg can decode") from exc
    if len(segment) < 200:
        raise MasteringError("the jingle is shorter than 0.2 s")
    signal = to_signal(trim_silence(segment))
    return to_segment(normalize_loudness(signal, TARGET_LUFS - ENCODER_GAIN_DB)[0])


SPLIT_ABOVE_SECONDS = 30.0


def spare_core() -> bool:
    """Whether a core is idle besides the one this process runs on. A second encoder only
    pays then: with other work about, its start-up (0.1 s of CPU) and the two halves
    competing with that work cost more than they save. On Linux, the threads runnable at
    this instant (this one among them), which follow the load as it changes; elsewhere
    the load average of the last minute."""
    cores = os.cpu_count() or 1
    try:
        runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return os.getloadavg()[0] < cores - 1
    return runnable - 1 <= cores - 2


def _ffmpeg_mp3(path: Path, tags: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-f", "s16le", "-ar", str(SAMPLE_RATE),
         "-ac", "1", "-i", "-", "-b:a", BITRATE, *tags, "-f", "mp3", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _feed(proc: subprocess.Popen[bytes], pcm: bytes) -> None:
    _, err = proc.communicate(pcm, timeout=600)
    if proc.returncode != 0:
        raise MasteringError(f"ffmpeg could not encode MP3: {err.decode(errors='replace')}")


class Mp3Encoder:
    """A mono MP3 with an ID3 title, written to `path` by ffmpeg started ahead of the
    audio: its start-up (about a tenth of a second) overlaps the mastering, and `finish`
    streams the PCM in. Use it as a context manager: an encoder left unused is stopped.

    LAME uses one core; a programme of about `seconds` over SPLIT_ABOVE_SECONDS is encoded,
    when a core is spare, as two halves on two cores, cut in the middle of a paragraph
    pause, and the MP3 streams are joined (each stream's encoder delay adds ~0.1 s of
    silence inside that pause). Such a file carries no Xing header, so players take the
    duration from the constant bitrate."""

    def __init__(self, path: Path, title: str, seconds: float) -> None:
        self.path = path
        self.second = path.with_name(path.name + ".part2")
        titled = ["-metadata", f"title={title}", "-id3v2_version", "3"]
        if seconds < SPLIT_ABOVE_SECONDS or not spare_core():
            self.procs = [_ffmpeg_mp3(path, titled)]
        else:
            self.procs = [
                _ffmpeg_mp3(path, [*titled, "-write_xing", "0"]),
                _ffmpeg_mp3(self.second, ["-id3v2_version", "0", "-write_xing", "0"]),
            ]

    def finish(self, mastered: Mastered) -> None:
        pcm = mastered.segment.raw_data
        cut = min(mastered.pauses, key=lambda p: abs(p - len(pcm) // 4), default=None)
        if len(self.procs) == 1 or cut is None or not 0.3 < cut * 2 / len(pcm) < 0.7:
            _feed(self.procs[0], pcm)  # a second encoder, if any, is stopped on exit
            return
        with ThreadPoolExecutor(max_workers=2) as pool:
            halves = [
                pool.submit(_feed, self.procs[0], pcm[: cut * 2]),
                pool.submit(_feed, self.procs[1], pcm[cut * 2 :]),
            ]
            for half in halves:
                half.result()
        with self.path.open("ab") as out, self.second.open("rb") as tail:
            shutil.copyfileobj(tail, out)

    def __enter__(self) -> Mp3Encoder:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            if proc.returncode is None:  # never fed, or cut short by an error
                proc.kill()
                proc.communicate()
        self.second.unlink(missing_ok=True)


def export_mp3(mastered: Mastered, path: Path, title: str) -> None:
    """Write a mono MP3 with an ID3 title to `path` (see Mp3Encoder)."""
    with Mp3Encoder(path, title, len(mastered.segment) / 1000) as encoder:
        encoder.finish(mastered)
