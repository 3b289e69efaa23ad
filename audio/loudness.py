"""Loudness (ITU-R BS.1770-4) and true peak, in numpy alone.

scipy is not used on purpose: importing it costs a second, more than the whole render
of a bulletin. The K-weighting biquads are applied as their magnitude response on the
spectrum, the true peak is found by sinc interpolation around the loudest samples only.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

Signal = NDArray[np.floating[Any]]  # float32 for whole programmes: half the memory traffic

BLOCK_SECONDS = 0.4
STEP_SECONDS = 0.1  # 75 % overlap
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLING = 4
SINC_TAPS = 24
# Near the loudest samples only: band-limited audio does not overshoot by 4 dB between two.
TRUE_PEAK_SEARCH_DB = 4.0
TRUE_PEAK_ROWS = 4096  # intervals interpolated at a time


def _k_weighting(rate: int) -> list[tuple[list[float], list[float]]]:
    """The two biquads (high shelf, high pass) of BS.1770 at any sample rate (as libebur128)."""
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (
        [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0],
        [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0],
    )
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / rate)
    a0 = 1 + k / q + k * k
    highpass = ([1.0, -2.0, 1.0], [1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0])
    return [shelf, highpass]


def _gain(b: list[float], a: list[float], c1: NDArray[np.float64]) -> NDArray[np.float64]:
    """|H(e^jw)| of a biquad from c1 = cos(w), in real arithmetic (cos 2w = 2 c1^2 - 1).
    In float64: near 0 Hz the high pass's terms cancel to nothing in float32."""

    def power(p: list[float]) -> NDArray[np.float64]:
        k0 = p[0] ** 2 + p[1] ** 2 + p[2] ** 2 - 2 * p[0] * p[2]
        k1 = 2 * (p[0] * p[1] + p[1] * p[2])
        k2 = 4 * p[0] * p[2]
        return k0 + c1 * (k1 + c1 * k2)

    gain: NDArray[np.float64] = np.sqrt(np.maximum(power(b), 0) / np.maximum(power(a), 1e-300))
    return gain


BLOCK = 1 << 14  # FFT size of the overlap-save blocks: small transforms stay in cache
GROUP = 8  # blocks transformed in one call: fewer calls, and still in cache
FILTER_SECONDS = 0.19  # the filters' impulse responses, cut (the 38 Hz high pass rings ~50 ms)


def spectral_gain(rate: int, n: int, band: tuple[float, float] | None = None) -> NDArray[Any]:
    """Gains at the bins of an n-point real FFT: the K-weighting, or a band pass with
    raised-cosine edges one octave wide when `band` = (low, high) Hz is given."""
    bins = np.linspace(0, rate / 2, n // 2 + 1)
    if band is None:
        c1 = np.cos(2 * math.pi * bins / rate)
        gain = np.ones(len(bins))
        for b, a in _k_weighting(rate):
            gain *= _gain(b, a, c1)
        return gain
    low, high = band
    octaves = np.log2(np.maximum(bins, 1e-3))
    rise = np.clip(octaves - (math.log2(low) - 0.5), 0, 1)
    fall = np.clip(math.log2(high) + 0.5 - octaves, 0, 1)
    edges: NDArray[Any] = (1 - np.cos(math.pi * rise)) * (1 - np.cos(math.pi * fall)) / 4
    return edges


def filter_taps(rate: int) -> int:
    return int(FILTER_SECONDS * rate) // 2 * 2 + 1  # odd: centred on a sample


@lru_cache(maxsize=8)
def block_filter(rate: int, band: tuple[float, float] | None, k_weighted: bool) -> NDArray[Any]:
    """The spectrum, for BLOCK-point FFTs, of a zero-phase filter: the band pass (if any)
    followed by the K-weighting (if asked), its impulse response cut to filter_taps with a
    Hann window and delayed by half of that (overlap-save gives it back)."""
    gain = np.ones(BLOCK // 2 + 1)
    if band is not None:
        gain *= spectral_gain(rate, BLOCK, band)
    if k_weighted:
        gain *= spectral_gain(rate, BLOCK)
    response = np.fft.irfft(gain, BLOCK)  # zero phase: centred on sample 0, circularly
    half = filter_taps(rate) // 2
    taps = np.concatenate([response[-half:], response[: half + 1]]) * np.hanning(2 * half + 1)
    spectrum: NDArray[Any] = np.fft.rfft(taps, BLOCK).astype(np.complex64)
    return spectrum


def band_and_k_weighted(
    x: Signal, rate: int, band: tuple[float, float] | None
) -> tuple[Signal, Signal]:
    """x through a band pass (none: unchanged) and that through the K-weighting, both with
    zero phase, by overlap-save in blocks of BLOCK samples: one forward transform of each
    block, one inverse per output, block after block so that the transforms and their
    products stay in cache, on two threads (numpy releases the GIL in its FFT). Block
    energies over 400 ms do not depend on phase, and ffmpeg's ebur128 agrees within
    0.1 LU (tests/test_loudness.py)."""
    if not len(x):
        return x, x
    x = x.astype(np.float32, copy=False)
    taps = filter_taps(rate)
    half, hop = taps // 2, BLOCK - taps + 1
    count = -(-len(x) // hop)
    responses = [block_filter(rate, band, True)]
    if band is not None:
        responses.append(block_filter(rate, band, False))
    outputs = [np.empty(count * hop, dtype=np.float32) for _ in responses]

    # Block b is x[b*hop - half : b*hop - half + BLOCK], zeros beyond x's ends; its last
    # `hop` outputs are valid. Blocks first..last-1 lie within x and are read from it.
    first = -(-half // hop)
    last = max(first, (len(x) + half - BLOCK) // hop + 1 if len(x) + half >= BLOCK else 0)
    inside = np.zeros((0, BLOCK), dtype=np.float32)
    if last > first:
        inside = np.lib.stride_tricks.sliding_window_view(x[first * hop - half :], BLOCK)[::hop]

    def edge(b: int) -> NDArray[np.float32]:
        block = np.zeros(BLOCK, dtype=np.float32)
        start = b * hop - half
        part = x[max(start, 0) : start + BLOCK]
        block[max(-start, 0) : max(-start, 0) + len(part)] = part
        return block

    def blocks(start: int, end: int) -> NDArray[np.float32]:
        if first <= start and end <= last:
            return inside[start - first : end - first]
        return np.stack(
            [inside[b - first] if first <= b < last else edge(b) for b in range(start, end)]
        )

    def run(blocks_from: int, blocks_to: int) -> None:
        # The same few arrays for every group: fresh ones, each over the allocator's
        # threshold for mapping new memory, would cost a page fault per 4 kB every time.
        spectra = np.empty((GROUP, BLOCK // 2 + 1), dtype=np.complex64)
        product = np.empty_like(spectra)
        filtered = np.empty((GROUP, BLOCK), dtype=np.float32)
        for start in range(blocks_from, blocks_to, GROUP):
            n = min(GROUP, blocks_to - start)
            # "ortho" on both sides: with the default norm the forward transform is scaled
            # by the integer 1, which makes numpy compute it in float64, three times slower.
            # (numpy's stubs know only float64 outputs, which its FFT takes as well as float32.)
            np.fft.rfft(blocks(start, start + n), axis=1, norm="ortho", out=spectra[:n])  # type: ignore[arg-type]
            for out, response in zip(outputs, responses, strict=True):
                np.multiply(spectra[:n], response, out=product[:n])
                np.fft.irfft(product[:n], BLOCK, axis=1, norm="ortho", out=filtered[:n])  # type: ignore[arg-type]
                out[start * hop : (start + n) * hop].reshape(n, hop)[:] = filtered[:n, taps - 1 :]

    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(run, count // 2, count)
        run(0, count // 2)
        later.result()
    weighted = outputs[0][: len(x)]
    return (outputs[1][: len(x)] if band is not None else x), weighted


def integrated_loudness(x: Signal, rate: int) -> float:
    """Integrated loudness in LUFS, gated as BS.1770-4; -inf for silence."""
    return gated_loudness(band_and_k_weighted(x, rate, None)[1], rate)


def gated_loudness(y: Signal, rate: int) -> float:
    """Integrated loudness of an already K-weighted signal."""
    step = int(STEP_SECONDS * rate)
    if len(y) < step * round(BLOCK_SECONDS / STEP_SECONDS):  # shorter than one gating block:
        energy = float(np.mean(np.square(y, dtype=np.float64))) if len(y) else 0.0  # ungated
        return -0.691 + 10 * math.log10(energy) if energy > 0 else -math.inf
    return steps_loudness(step_energies(y, rate), rate)


def step_energies(y: Signal, rate: int) -> NDArray[np.float64]:
    """The energy (sum of squares) of each whole STEP_SECONDS of a K-weighted signal."""
    step = int(STEP_SECONDS * rate)
    blocks = y[: len(y) // step * step].reshape(-1, step)
    energies: NDArray[np.float64] = np.einsum("ij,ij->i", blocks, blocks).astype(np.float64)
    return energies  # einsum: no squared copy


def steps_loudness(steps: NDArray[np.float64], rate: int) -> float:
    """Integrated loudness from step_energies (at least one gating block of them), gated
    as BS.1770-4; -inf for silence."""
    step = int(STEP_SECONDS * rate)
    per_block = round(BLOCK_SECONDS / STEP_SECONDS)
    windows = np.lib.stride_tricks.sliding_window_view(steps, per_block)
    z = windows.sum(axis=1) / (step * per_block)
    with np.errstate(divide="ignore"):
        levels = -0.691 + 10 * np.log10(z)
    z = z[levels > ABSOLUTE_GATE_LUFS]
    if not len(z):
        return -math.inf
    relative = -0.691 + 10 * math.log10(float(z.mean())) + RELATIVE_GATE_LU
    with np.errstate(divide="ignore"):
        z = z[-0.691 + 10 * np.log10(z) > relative]
    return -0.691 + 10 * math.log10(float(z.mean()))


def _kernels() -> NDArray[np.float32]:
    """Windowed-sinc kernels for the OVERSAMPLING-1 points between two samples."""
    half = SINC_TAPS // 2
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)
    rows = []
    for phase in range(1, OVERSAMPLING):
        t = taps - phase / OVERSAMPLING
        window = 0.5 + 0.5 * np.cos(math.pi * t / (half + 1))
        rows.append(np.sinc(t) * window)
    kernels: NDArray[np.float32] = np.array(rows, dtype=np.float32)
    return kernels


_KERNELS = _kernels()


def loud_samples(
    x: Signal, threshold: float, among: NDArray[np.intp] | None = None
) -> tuple[NDArray[np.intp], Signal]:
    """Indices of the samples at or above `threshold` and their true peaks: the larger of
    the sample and the oversampled points on either side of it. `among`, if given, are
    sorted indices that hold every such sample (found before at a lower threshold): only
    they are looked at, not the whole signal."""
    if among is None:
        near = np.flatnonzero(np.abs(x) >= threshold)
    else:
        near = among[np.abs(x[among]) >= threshold]
    if not len(near):
        return near, np.abs(x[near])
    # The points between i-1 and i, and between i and i+1, for each loud sample i: loud
    # samples come in runs, so each interval is interpolated once, for both its ends.
    # `at` (the intervals' first samples) is `near` with the sample before each run.
    first = np.diff(near, prepend=-2) != 1
    at = np.insert(near, np.flatnonzero(first), near[first] - 1)
    # near[i] is at[position[i]], and the sample before it at[position[i] - 1].
    position = np.arange(len(near)) + np.cumsum(first)
    if at[0] < 0:  # sample 0 is loud: it has no interval before it
        at, position = at[1:], position - 1
    # Row k: the SINC_TAPS samples around the interval from sample at[k] to the next,
    # x[at[k] - half + 1 : at[k] + half + 1]; zeros beyond the ends.
    half = SINC_TAPS // 2
    if at[0] >= half - 1 and at[-1] + half + 1 <= len(x):
        windows, row = np.lib.stride_tricks.sliding_window_view(x, SINC_TAPS), at - half + 1
    else:  # a loud sample at an end (rare: speech is trimmed): pad the signal
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, (half, half)), SINC_TAPS)
        row = at + 1
    # A few thousand rows at a time: no fresh copy of them all (the allocator reuses a
    # block's memory for the next).
    between = np.empty(len(at), dtype=np.float32)
    for start in range(0, len(at), TRUE_PEAK_ROWS):
        rows = windows[row[start : start + TRUE_PEAK_ROWS]]
        # (phases, n): max along a row is slow.
        between[start : start + len(rows)] = np.abs(_KERNELS @ rows.T).max(axis=0)
    before = between[np.maximum(position - 1, 0)]
    return near, np.maximum(np.abs(x[near]), np.maximum(before, between[position]))


def true_peak(x: Signal) -> float:
    """True peak in dBTP (4x oversampled)."""
    if not len(x):
        return -math.inf
    top = float(np.abs(x).max())
    if top == 0:
        return -math.inf
    _, peaks = loud_samples(x, top * 10 ** (-TRUE_PEAK_SEARCH_DB / 20))
    return 20 * math.log10(float(peaks.max()))
