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
    zero phase, by overlap-save in blocks of BLOCK samples: one forward transform of the
    blocks, one inverse per output. Block energies over 400 ms do not depend on phase, and
    ffmpeg's ebur128 agrees within 0.1 LU (tests/test_loudness.py)."""
    if not len(x):
        return x, x
    taps = filter_taps(rate)
    half, hop = taps // 2, BLOCK - taps + 1
    count = -(-len(x) // hop)
    # Block b is x[b*hop - half : b*hop - half + BLOCK]; its last `hop` outputs are valid.
    padded = np.pad(x.astype(np.float32, copy=False), (half, count * hop + half - len(x)))
    blocks = np.lib.stride_tricks.sliding_window_view(padded, BLOCK)[::hop]
    # "ortho" on both sides: with the default norm the forward transform is scaled by the
    # integer 1, which makes numpy compute it in float64, three times slower.
    spectra = np.fft.rfft(blocks, axis=1, norm="ortho")

    def filtered(response: NDArray[Any]) -> Signal:
        out: Signal = np.fft.irfft(spectra * response, BLOCK, axis=1, norm="ortho")
        return out[:, taps - 1 :].ravel()[: len(x)]

    # The two inverse transforms run side by side: numpy releases the GIL in its FFT.
    with ThreadPoolExecutor(max_workers=2) as pool:
        weighted = pool.submit(filtered, block_filter(rate, band, True))
        if band is not None:
            x = filtered(block_filter(rate, band, False))
        return x, weighted.result()


def integrated_loudness(x: Signal, rate: int) -> float:
    """Integrated loudness in LUFS, gated as BS.1770-4; -inf for silence."""
    return gated_loudness(band_and_k_weighted(x, rate, None)[1], rate)


def gated_loudness(y: Signal, rate: int) -> float:
    """Integrated loudness of an already K-weighted signal."""
    step = int(STEP_SECONDS * rate)
    per_block = round(BLOCK_SECONDS / STEP_SECONDS)
    if len(y) < step * per_block:  # shorter than one gating block: its energy, ungated
        energy = float(np.mean(np.square(y, dtype=np.float64))) if len(y) else 0.0
        return -0.691 + 10 * math.log10(energy) if energy > 0 else -math.inf
    blocks = y[: len(y) // step * step].reshape(-1, step)
    steps = np.einsum("ij,ij->i", blocks, blocks).astype(np.float64)  # no squared copy
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


def loud_samples(x: Signal, threshold: float) -> tuple[NDArray[np.intp], Signal]:
    """Indices of the samples at or above `threshold` and their true peaks: the larger of
    the sample and the oversampled points on either side of it."""
    near = np.flatnonzero(np.abs(x) >= threshold)
    if not len(near):
        return near, np.abs(x[near])
    half = SINC_TAPS // 2
    padded = np.pad(x, (half, half))
    # The points between i-1 and i, and between i and i+1, for each loud sample i: loud
    # samples come in runs, so each interval is interpolated once, for both its ends.
    starts = np.zeros(len(x), dtype=bool)
    starts[near] = True
    starts[np.maximum(near - 1, 0)] = True
    at = np.flatnonzero(starts)
    # Row k: the SINC_TAPS samples around the interval from sample at[k] to the next.
    windows = np.lib.stride_tricks.sliding_window_view(padded, SINC_TAPS)[at + 1]
    between = np.abs(_KERNELS @ windows.T).max(axis=0)  # (phases, n): max along a row is slow
    before = between[np.searchsorted(at, np.maximum(near - 1, 0))]
    return near, np.maximum(np.abs(x[near]), np.maximum(before, between[np.searchsorted(at, near)]))


def true_peak(x: Signal) -> float:
    """True peak in dBTP (4x oversampled)."""
    if not len(x):
        return -math.inf
    top = float(np.abs(x).max())
    if top == 0:
        return -math.inf
    _, peaks = loud_samples(x, top * 10 ** (-TRUE_PEAK_SEARCH_DB / 20))
    return 20 * math.log10(float(peaks.max()))
