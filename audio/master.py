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
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydub import AudioSegment
from pydub.silence import detect_leading_silence

from audio.loudness import (
    BLOCK_SECONDS,
    SINC_TAPS,
    STEP_SECONDS,
    TRUE_PEAK_ROWS,
    TRUE_PEAK_SEARCH_DB,
    Signal,
    band_and_k_weighted,
    block_filter,
    gated_loudness,
    integrated_loudness,
    loud_samples,
    step_energies,
    steps_loudness,
    true_peak,
)

SAMPLE_RATE = 22050  # horns reproduce little above 8 kHz; half the data of 44.1 kHz
BITRATE_KBPS = 64
BITRATE = f"{BITRATE_KBPS}k"
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
STEP = int(STEP_SECONDS * SAMPLE_RATE)  # samples in a loudness step
GATING_BLOCK = round(BLOCK_SECONDS / STEP_SECONDS) * STEP  # samples in a gating block


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


def to_segment(x: Signal, *, overwrite: bool = False) -> AudioSegment:
    """16-bit samples of x. With `overwrite`, x is used as the scratch space on the way and
    the samples are written straight into the segment's data, a bytearray (no 16-bit
    copy, then a bytes copy of it): for a segment that is only encoded."""
    y = np.multiply(x, np.float32(32767), out=x if overwrite else None)
    np.clip(np.rint(y, out=y), -32768, 32767, out=y)
    if not overwrite:
        pcm: bytes | bytearray = y.astype(np.int16).tobytes()
    else:
        pcm = bytearray(2 * len(y))
        np.copyto(np.frombuffer(pcm, dtype=np.int16), y, casting="unsafe")
    return AudioSegment(pcm, frame_rate=SAMPLE_RATE, sample_width=2, channels=1)


def loudness(x: Signal) -> float:
    return integrated_loudness(x, SAMPLE_RATE)


@dataclass(frozen=True)
class LimiterGain:
    """A limiter's gain curve where it differs from 1: blocks of `size` samples (block k
    covers samples k*size to (k+1)*size), `curves[i]` on block `blocks[i]` (sorted);
    1 everywhere else. Limiting touches a small part of a programme, so its gain is kept
    and applied there only, never as a whole programme's worth of ones."""

    size: int
    blocks: NDArray[np.intp]
    curves: Signal

    def at(self, index: NDArray[np.intp]) -> Signal:
        """The gain at these sample indices."""
        block = index // self.size
        row = np.minimum(np.searchsorted(self.blocks, block), len(self.blocks) - 1)
        found = self.blocks[row] == block
        gain: Signal = np.ones(len(index), dtype=np.float32)
        gain[found] = self.curves[row[found], index[found] % self.size]
        return gain

    def rows(self, x: Signal) -> tuple[NDArray[Any], int]:
        """x's whole blocks as rows (a view), and how many of `blocks` are among them."""
        whole = len(x) // self.size
        return x[: whole * self.size].reshape(whole, self.size), int(
            np.searchsorted(self.blocks, whole)
        )

    def apply(self, x: Signal) -> Signal:
        """x times this gain, in place."""
        rows, count = self.rows(x)
        rows[self.blocks[:count]] *= self.curves[:count]
        for block, curve in zip(self.blocks[count:], self.curves[count:], strict=True):
            start = block * self.size  # the last block, cut short
            x[start:] *= curve[: len(x) - start]
        return x


LIMITER_BLOCK = max(1, int(LOOKAHEAD_SECONDS * SAMPLE_RATE))  # samples
_OFFSET = (np.arange(LIMITER_BLOCK, dtype=np.float32) - LIMITER_BLOCK / 2) / LIMITER_BLOCK
_LEFT = (LIMITER_BLOCK + 1) // 2  # the samples before a block's centre (_OFFSET < 0)


@dataclass(frozen=True)
class BlockGains:
    """A limiter's gains at the centres of the blocks `touched` (`here`) and of the blocks
    before and after each (`before`, `after`), the blocks whose curve is not all 1."""

    touched: NDArray[np.intp]
    here: Signal
    before: Signal
    after: Signal


def limiter_blocks(
    length: int, index: NDArray[np.intp], peaks: Signal, ceiling_dbtp: float = CEILING_DBTP
) -> BlockGains | None:
    """The blocks of limiter_curve and their gains, or None if nothing needs holding."""
    ceiling = 10 ** (ceiling_dbtp / 20)
    over = peaks > ceiling
    if not over.any():
        return None
    where, need = index[over], ceiling / peaks[over]
    blocks = -(-length // LIMITER_BLOCK)
    block = np.ones(blocks, dtype=np.float32)
    # `where` is sorted: the least need of each block by one reduceat over its runs.
    owner = where // LIMITER_BLOCK
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
    return BlockGains(
        touched,
        held[touched][:, None],
        held[np.maximum(touched - 1, 0)][:, None],
        held[np.minimum(touched + 1, blocks - 1)][:, None],
    )


def limiter_curve(
    length: int, index: NDArray[np.intp], peaks: Signal, ceiling_dbtp: float = CEILING_DBTP
) -> LimiterGain | None:
    """A smooth gain curve that holds the given true peaks (at these sample indices, sorted)
    under the ceiling, or None if nothing needs holding. Worked out on blocks of a few
    milliseconds: each block's gain is the least any sample within one block of it needs
    (look-ahead and hold), and the curve runs linearly between block centres, never above
    what a sample needs."""
    return _curve(limiter_blocks(length, index, peaks, ceiling_dbtp))


def _curve(gains: BlockGains | None) -> LimiterGain | None:
    if gains is None:
        return None
    curves = np.empty((len(gains.touched), LIMITER_BLOCK), dtype=np.float32)
    np.multiply(gains.before - gains.here, np.abs(_OFFSET[:_LEFT]), out=curves[:, :_LEFT])
    np.multiply(gains.after - gains.here, np.abs(_OFFSET[_LEFT:]), out=curves[:, _LEFT:])
    curves += gains.here
    return LimiterGain(LIMITER_BLOCK, gains.touched, curves)


def limit(x: Signal, ceiling_dbtp: float = CEILING_DBTP) -> Signal:
    """x with its true peaks held under the ceiling."""
    index, peaks = loud_samples(x, 10 ** ((ceiling_dbtp - TRUE_PEAK_SEARCH_DB) / 20))
    gain = limiter_curve(len(x), index, peaks, ceiling_dbtp)
    return x if gain is None else gain.apply(x.copy())


def normalize_loudness(
    x: Signal, target: float = TARGET_LUFS, *, overwrite: bool = False
) -> tuple[Signal, float, float]:
    """Band-limit for horns, bring to the target loudness and hold the peaks.
    Returns the signal, its loudness and its true peak. With `overwrite`, x (float32) is
    used as scratch space once filtered.

    Filtering happens once: a gain, even the limiter's slow gain curve, commutes with the
    K-weighting closely enough (within 0.1 LU) to measure each attempt by multiplication,
    and only where the limiter acts: the energy of every 100 ms step is worked out once,
    and each attempt scales it and corrects the steps the limiter's curve touches."""
    band, weighted = band_and_k_weighted(x, SAMPLE_RATE, HORN_BAND)
    gated = len(weighted) >= GATING_BLOCK
    steps = step_energies(weighted, SAMPLE_RATE) if gated else None
    if steps is None:
        measured = gated_loudness(weighted, SAMPLE_RATE)
    else:
        measured = steps_loudness(steps, SAMPLE_RATE)
    if math.isinf(measured):
        raise MasteringError("the audio is silent")
    scale = first = 10 ** ((target - measured) / 20)
    # Limiting takes loudness away, so the loudness grows slower than the gain: find the
    # gain by the secant method on (gain dB -> loudness), which converges in 2-3 steps,
    # using the samples' own peaks (cheap) near the ceiling, with room for the gain to grow.
    room = 10 ** ((CEILING_DBTP - 4.0) / 20)
    scratch = x if overwrite and x.dtype == np.float32 and len(x) == len(band) else None
    index = np.flatnonzero(np.abs(band, out=scratch) >= room / scale)
    peaks = np.abs(band[index])
    moments = None if steps is None else _Moments(weighted, len(steps), index, scratch)
    tried: list[tuple[float, float]] = []
    for _ in range(5):
        gains = limiter_blocks(len(band), index, peaks * scale)
        if moments is None or steps is None:  # shorter than a gating block: as it is
            y, curve = weighted * np.float32(scale), _curve(gains)
            measured = gated_loudness(y if curve is None else curve.apply(y), SAMPLE_RATE)
        else:
            measured = steps_loudness(moments.energies(steps, scale, gains), SAMPLE_RATE)
        tried.append((20 * math.log10(scale), measured))
        if abs(measured - target) < 0.15:
            break
        slope = 1.0
        if len(tried) > 1:
            (g0, l0), (g1, l1) = tried[-2], tried[-1]
            slope = (l1 - l0) / (g1 - g0) if g1 != g0 and l1 != l0 else 1.0
        scale *= 10 ** ((target - measured) / max(slope, 0.1) / 20)
    # Then hold the true (inter-sample) peaks of what this gain brings near the ceiling:
    # among the samples found above, unless the gain grew past the room left for it.
    threshold = 10 ** ((CEILING_DBTP - 2.0) / 20) / scale
    index, peaks = loud_samples(band, threshold, index if threshold >= room / first else None)
    curve = limiter_curve(len(band), index, peaks * scale)
    out: Signal = np.multiply(band, np.float32(scale), out=band)  # band is not used again
    held_peaks = peaks * scale
    if curve is not None:
        curve.apply(out)
        held_peaks *= curve.at(index)
    top = float(held_peaks.max(initial=0.0))
    # Every other sample is under the threshold times the gain: only if no held peak
    # reaches that can a sample elsewhere be the top.
    if top < threshold * scale:
        top = max(top, float(np.abs(out).max(initial=0.0)))
    return out, measured, 20 * math.log10(top) if top > 0 else -math.inf


class _Moments:
    """The energy the limiter takes from each 100 ms step of the K-weighted signal, worked
    out per block without the curve's samples. In a block's half the curve is g = h + d*a
    (h its gain at the centre, d the difference to a neighbour's, a = |offset|), so the
    change sum(w^2 (g^2 - 1)) is (h^2 - 1) sum(w^2) + 2 h d sum(w^2 a) + d^2 sum(w^2 a^2):
    those sums are taken once, for the blocks the limiter can touch (within two blocks of
    a candidate peak), split where a block runs across two steps."""

    def __init__(
        self, weighted: Signal, steps: int, index: NDArray[np.intp], scratch: Signal | None
    ) -> None:
        whole = -(-steps * STEP // LIMITER_BLOCK)  # the blocks within the whole steps
        near = np.zeros(whole + 4, dtype=bool)  # blocks -2 .. whole + 1
        for shift in range(5):
            near[np.minimum(index // LIMITER_BLOCK + shift, whole + 3)] = True
        self.blocks = np.flatnonzero(near[2 : whole + 2])  # (np.unique: 30 ms the first time)
        full = len(weighted) // LIMITER_BLOCK
        rows = weighted[: full * LIMITER_BLOCK].reshape(full, LIMITER_BLOCK)
        count = len(self.blocks)
        squares = (
            np.empty((count, LIMITER_BLOCK), dtype=np.float32)
            if scratch is None or len(scratch) < count * LIMITER_BLOCK
            else scratch[: count * LIMITER_BLOCK].reshape(count, LIMITER_BLOCK)
        )
        inside = int(np.searchsorted(self.blocks, full))
        # mode="clip": with "raise", numpy writes to a copy first.
        np.take(rows, self.blocks[:inside], axis=0, out=squares[:inside], mode="clip")
        if inside < count:  # a last block cut short by the end: zeros after it
            tail = weighted[full * LIMITER_BLOCK :]
            squares[inside:] = 0
            squares[inside, : len(tail)] = tail
        np.square(squares, out=squares)
        start = self.blocks * LIMITER_BLOCK
        self.step = start // STEP
        split = (self.step + 1) * STEP - start  # the samples of the block in its first step
        across = np.flatnonzero(split < LIMITER_BLOCK)
        later = squares[across] * (np.arange(LIMITER_BLOCK) >= split[across, None])
        # Columns: sum(w^2), sum(w^2 a), sum(w^2 a^2) over the first half, then the second.
        self.first, self.second = np.empty((count, 6)), np.zeros((count, 6))
        weights = np.abs(_OFFSET)
        for power in range(3):
            for half, part in enumerate((slice(0, _LEFT), slice(_LEFT, None))):
                column = 3 * half + power
                self.first[:, column] = squares[:, part].sum(axis=1)
                self.second[across, column] = later[:, part].sum(axis=1)
            if power < 2:
                squares *= weights
                later *= weights
        self.first -= self.second

    def energies(
        self, steps: NDArray[np.float64], scale: float, gains: BlockGains | None
    ) -> NDArray[np.float64]:
        """The step energies of the signal times `scale` and the limiter's curve."""
        energies = steps * scale**2
        if gains is None:
            return energies
        touched = gains.touched
        row = np.searchsorted(self.blocks, touched)
        kept = row < len(self.blocks)
        kept[kept] = self.blocks[row[kept]] == touched[kept]  # past the whole steps: left out
        row = row[kept]
        h = gains.here[kept, 0].astype(np.float64)
        change = np.zeros((2, len(row)))
        for half, d in enumerate((gains.before[kept, 0] - gains.here[kept, 0],
                                  gains.after[kept, 0] - gains.here[kept, 0])):  # fmt: skip
            d = d.astype(np.float64)
            factors = np.stack([h * h - 1, 2 * h * d, d * d])
            for k, moments in enumerate((self.first, self.second)):
                change[k] += np.einsum("ij,ji->i", moments[row, 3 * half : 3 * half + 3], factors)
        step = self.step[row]
        energies += np.bincount(step, change[0], len(steps)) * scale**2
        energies += np.bincount(step + 1, change[1], len(steps) + 1)[:-1] * scale**2
        return energies


def trim_silence(segment: AudioSegment) -> AudioSegment:
    """Cut leading and trailing silence."""
    start = detect_leading_silence(segment, silence_threshold=SILENCE_THRESHOLD_DBFS)
    end = detect_leading_silence(segment.reverse(), silence_threshold=SILENCE_THRESHOLD_DBFS)
    trimmed: AudioSegment = segment[start : len(segment) - end]
    return trimmed if len(trimmed) > 0 else segment


# trim_silence's 10 ms chunks are silent when their RMS, an integer, is under this.
_SILENT_RMS = next(
    r for r in range(1, 32769) if 20 * math.log10(r / 32768) >= SILENCE_THRESHOLD_DBFS
)
_FRAMES_PER_MS = SAMPLE_RATE / 1000.0


def _silent_ms(pcm: NDArray[np.int16], length_ms: int, *, from_end: bool) -> int:
    """pydub's detect_leading_silence (10 ms chunks, SILENCE_THRESHOLD_DBFS) of 16-bit mono
    at SAMPLE_RATE, or of it reversed, without copying or reversing all of it: chunks are
    looked at a second's worth at a time, from the start (or end)."""
    first, span = 0, 1000
    while first < length_ms:
        t = np.arange(first, min(first + span, length_ms), 10)
        # The frames pydub takes for a chunk, as it works them out (and pads with zeros).
        start = (t * _FRAMES_PER_MS).astype(np.int64)
        end = (np.minimum(t + 10, length_ms) * _FRAMES_PER_MS).astype(np.int64)
        window = pcm[max(len(pcm) - int(end[-1]), 0) :][::-1] if from_end else pcm[: end[-1]]
        energy = np.zeros(len(window) + 1, dtype=np.int64)
        np.cumsum(np.square(window, dtype=np.int64), out=energy[1:])
        sums = energy[np.minimum(end, len(window))] - energy[np.minimum(start, len(window))]
        loud = np.flatnonzero(sums >= _SILENT_RMS**2 * (end - start))
        if len(loud):
            return int(t[loud[0]])
        first, span = first + span, span * 2
    return length_ms


def _trimmed(segment: AudioSegment) -> tuple[NDArray[Any], int]:
    """to_signal(trim_silence(segment)) as the samples to keep and a count of zeros after
    them (pydub pads a slice that reaches past the end). The engines' usual 16-bit mono at
    SAMPLE_RATE is trimmed in place, the same samples without pydub's copies of the whole,
    and given as 16-bit samples; other audio goes through pydub and comes as a signal."""
    if (segment.channels, segment.sample_width, segment.frame_rate) != (1, 2, SAMPLE_RATE):
        return to_signal(trim_silence(segment)), 0
    pcm = np.frombuffer(segment.raw_data, dtype=np.int16)
    length_ms = round(1000 * (float(len(pcm)) / SAMPLE_RATE))  # len(segment), as pydub
    lead = _silent_ms(pcm, length_ms, from_end=False)
    trail = _silent_ms(pcm, length_ms, from_end=True)
    start, end = int(lead * _FRAMES_PER_MS), int((length_ms - trail) * _FRAMES_PER_MS)
    kept = pcm[start:end]
    padding = end - start - len(kept)
    if not len(kept) or padding > 2 * _FRAMES_PER_MS:  # nothing left, or pydub would refuse
        return to_signal(trim_silence(segment)), 0
    if round(1000 * ((len(kept) + padding) / SAMPLE_RATE)) == 0:
        return pcm, 0  # under half a millisecond left: trim_silence keeps it all
    return kept, padding


def get_ready() -> None:
    """Work out what mastering any speech needs (the filters' spectra, numpy's FFT, the
    buffers OpenBLAS takes on its first product): the renderer calls it while the engine
    speaks."""
    for k_weighted in (True, False):
        block_filter(SAMPLE_RATE, HORN_BAND, k_weighted)
    true_peak(np.zeros(TRUE_PEAK_ROWS + SINC_TAPS, dtype=np.float32) + np.float32(0.5))


def _silence(ms: int) -> Signal:
    return np.zeros(SAMPLE_RATE * ms // 1000, dtype=np.float32)  # float64 would widen all


def master(
    parts: list[AudioSegment],
    pause_ms: int,
    intro: AudioSegment | None = None,
    outro: AudioSegment | None = None,
) -> Mastered:
    """Paragraphs joined by a pause, at the target loudness, between optional jingles."""
    pieces = [_trimmed(part) for part in parts]
    pause = SAMPLE_RATE * pause_ms // 1000  # samples, as _silence
    # One array for the programme, written in place: the pauses are its zeros.
    total = sum(len(p) + padding for p, padding in pieces) + pause * max(len(parts) - 1, 0)
    voice = np.zeros(total, dtype=np.float32)
    pauses: list[int] = []
    length = 0
    for i, (piece, padding) in enumerate(pieces):
        if i:
            pauses.append(length + pause // 2)
            length += pause
        if piece.dtype == np.int16:
            np.multiply(piece, np.float32(1 / 32768), out=voice[length : length + len(piece)])
        else:
            voice[length : length + len(piece)] = piece
        length += len(piece) + padding
    speech, level, peak = normalize_loudness(voice, TARGET_LUFS - ENCODER_GAIN_DB, overwrite=True)
    if intro is None and outro is None:
        return Mastered(
            to_segment(speech, overwrite=True),
            level + ENCODER_GAIN_DB,
            peak + ENCODER_GAIN_DB,
            tuple(pauses),
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


# How LAME's command and ffmpeg read the programme: raw 16-bit mono PCM on stdin.
LAME_RAW_MONO = ["lame", "--silent", "--noreplaygain", "-r", "--bitwidth", "16", "--signed",
                 "--little-endian", "-m", "m"]  # fmt: skip
FFMPEG_RAW_MONO = ["ffmpeg", "-loglevel", "error", "-y", "-f", "s16le", "-ac", "1"]


def _encoder(path: Path, title: str | None, *, whole: bool) -> subprocess.Popen[bytes]:
    """A process encoding 16-bit PCM from its stdin to a CBR MP3 at `path`: with an ID3v2
    title when one is given, and an Info (Xing) header when the file is `whole`, not a
    part to be joined. LAME's own command when installed: ffmpeg loads some 200 libraries
    before it encodes (0.13 s of CPU) and wraps the same libmp3lame with the same
    defaults, so the frames are the same (tested)."""
    if shutil.which("lame"):
        tags = ["--id3v2-only", "--id3v2-utf16", "--tt", title] if title is not None else []
        argv = [*LAME_RAW_MONO, "-s", str(SAMPLE_RATE / 1000), "-b", str(BITRATE_KBPS), *tags]
        argv += [*([] if whole else ["-t"]), "-", str(path)]
    else:
        tags = ["-metadata", f"title={title}", "-id3v2_version", "3"] if title is not None else []
        argv = [*FFMPEG_RAW_MONO, "-ar", str(SAMPLE_RATE), "-i", "-", "-b:a", BITRATE]
        argv += [*(tags or ["-id3v2_version", "0"]), *([] if whole else ["-write_xing", "0"])]
        argv += ["-f", "mp3", str(path)]
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _feed(proc: subprocess.Popen[bytes], pcm: bytes | memoryview) -> None:
    # communicate writes any bytes-like input (through a memoryview); typeshed says bytes.
    _, err = proc.communicate(pcm, timeout=600)  # type: ignore[arg-type]
    if proc.returncode != 0:
        raise MasteringError(f"could not encode MP3: {err.decode(errors='replace')}")


class Mp3Encoder:
    """A mono MP3 with an ID3 title, written to `path` by an encoder started ahead of the
    audio (its start-up overlaps the mastering), and `finish` streams the PCM in. Use it
    as a context manager: an encoder left unused is stopped.

    LAME uses one core; a programme of about `seconds` over SPLIT_ABOVE_SECONDS is encoded,
    when a core is spare, as two halves on two cores, cut in the middle of a paragraph
    pause, and the MP3 streams are joined (each stream's encoder delay adds ~0.1 s of
    silence inside that pause). Such a file carries no Xing header, so players take the
    duration from the constant bitrate."""

    def __init__(self, path: Path, title: str, seconds: float) -> None:
        self.path = path
        self.second = path.with_name(path.name + ".part2")
        if seconds < SPLIT_ABOVE_SECONDS or not spare_core():
            self.procs = [_encoder(path, title, whole=True)]
        else:
            self.procs = [
                _encoder(path, title, whole=False),
                _encoder(self.second, None, whole=False),
            ]

    def finish(self, mastered: Mastered) -> None:
        pcm = mastered.segment.raw_data
        cut = min(mastered.pauses, key=lambda p: abs(p - len(pcm) // 4), default=None)
        if len(self.procs) == 1 or cut is None or not 0.3 < cut * 2 / len(pcm) < 0.7:
            _feed(self.procs[0], pcm)  # a second encoder, if any, is stopped on exit
            return
        whole = memoryview(pcm)  # halves without copies
        with ThreadPoolExecutor(max_workers=2) as pool:
            halves = [
                pool.submit(_feed, self.procs[0], whole[: cut * 2]),
                pool.submit(_feed, self.procs[1], whole[cut * 2 :]),
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
