"""Loudness and true peak, checked against BS.1770's reference values and ffmpeg's ebur128."""

import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydub import AudioSegment

import audio.master
from audio.loudness import BLOCK, band_and_k_weighted, integrated_loudness, true_peak
from audio.master import (
    CEILING_DBTP,
    HORN_BAND,
    SAMPLE_RATE,
    MasteringError,
    Mp3Encoder,
    limit,
    master,
    normalize_loudness,
    prepare_jingle,
    to_segment,
    to_signal,
)

RATE = SAMPLE_RATE


def sine(freq: float, amplitude: float, seconds: float = 5.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * math.pi * freq * t + phase)


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) as ffmpeg's ebur128 filter measures them."""
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", "ebur128=peak=true",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    summary = out[out.rindex("Summary:") :]
    lufs = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))  # type: ignore[union-attr]
    peak = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))  # type: ignore[union-attr]
    return lufs, peak


def write_wav(x: np.ndarray, path: Path) -> Path:
    to_segment(x).export(str(path), format="wav")
    return path


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.1])
def test_a_997_hz_sine_measures_as_bs1770_says(amplitude: float) -> None:
    # BS.1770-4: a 0 dB FS 997 Hz sine reads -3.01 LKFS.
    expected = -3.01 + 20 * math.log10(amplitude)
    assert integrated_loudness(sine(997, amplitude), RATE) == pytest.approx(expected, abs=0.05)


def test_silence_has_no_loudness() -> None:
    assert integrated_loudness(np.zeros(RATE * 3), RATE) == -math.inf


def test_loudness_agrees_with_ffmpeg_on_speech(tmp_path: Path) -> None:
    espeak = subprocess.run(
        ["espeak-ng", "-v", "vi", "--stdout", "Ủy ban nhân dân xã thông báo lịch tiếp công dân "
         "từ bảy giờ ba mươi đến mười một giờ các ngày trong tuần."],
        capture_output=True, check=True,
    )  # fmt: skip
    (tmp_path / "s.wav").write_bytes(espeak.stdout)
    x = to_signal(AudioSegment.from_wav(str(tmp_path / "s.wav")))
    lufs, peak = ebur128(write_wav(x, tmp_path / "x.wav"))
    assert integrated_loudness(x, RATE) == pytest.approx(lufs, abs=0.2)
    assert true_peak(x) == pytest.approx(peak, abs=0.3)


def test_the_filters_run_in_blocks_without_seams_or_phase_shift() -> None:
    x = sine(1000, 0.5, 5.0)  # many overlap-save blocks long
    assert len(x) > 5 * BLOCK
    inside = slice(RATE // 5, -RATE // 5)  # away from the ends, where the filters ring
    for y in band_and_k_weighted(x, RATE, HORN_BAND):
        # Zero phase: the same sine comes out, scaled by the filter's gain, at every sample.
        gain = float(y[inside] @ x[inside] / (x[inside] @ x[inside]))
        assert np.abs(y[inside] - gain * x[inside]).max() < 1e-4
    band, _ = band_and_k_weighted(x, RATE, HORN_BAND)
    assert np.abs(band[inside]).max() == pytest.approx(0.5, rel=0.01)


def test_the_band_filter_keeps_what_horns_reproduce() -> None:
    inside = slice(RATE // 5, -RATE // 5)
    for outside in (50, 10500):  # Hz: mains hum, and above the band's upper edge
        band, _ = band_and_k_weighted(sine(outside, 0.5, 3.0), RATE, HORN_BAND)
        assert np.abs(band[inside]).max() < 0.005


def test_the_true_peak_sees_what_lies_between_samples() -> None:
    # A quarter-rate sine sampled 45 degrees off its crests: samples at 0.707, crests at 1.
    x = sine(RATE / 4, 1.0, 1.0, phase=math.pi / 4)
    assert 20 * math.log10(np.abs(x).max()) == pytest.approx(-3.0, abs=0.05)
    assert true_peak(x) == pytest.approx(0.0, abs=0.2)


def test_the_limiter_holds_true_peaks_under_the_ceiling() -> None:
    x = sine(3000, 1.2, 2.0, phase=0.3) * np.repeat([0.2, 1.0, 0.4, 1.0], RATE // 2)
    assert true_peak(limit(x)) <= CEILING_DBTP + 0.1
    quiet = sine(440, 0.1, 1.0)
    assert np.array_equal(limit(quiet), quiet)  # nothing to hold, nothing changed


def test_normalizing_reaches_the_target_loudness_and_ceiling() -> None:
    rng = np.random.default_rng(7)
    speechlike = rng.normal(0, 0.05, RATE * 20) * (1 + np.sin(np.arange(RATE * 20) / 900) ** 8 * 6)
    out, lufs, peak = normalize_loudness(speechlike, -16.0)
    assert lufs == pytest.approx(-16.0, abs=0.2)
    assert integrated_loudness(out, RATE) == pytest.approx(-16.0, abs=0.3)
    assert true_peak(out) <= CEILING_DBTP + 0.1
    assert peak == pytest.approx(true_peak(out), abs=0.3)


def test_silence_cannot_be_mastered() -> None:
    with pytest.raises(MasteringError, match="silent"):
        master([AudioSegment.silent(2000, frame_rate=RATE)], 500)


def test_a_jingle_is_loudness_matched_and_non_audio_is_refused(tmp_path: Path) -> None:
    loud = write_wav(sine(660, 0.9, 3.0), tmp_path / "loud.wav")
    jingle = to_signal(prepare_jingle(loud))
    assert integrated_loudness(jingle, RATE) == pytest.approx(-15.55, abs=0.3)
    (tmp_path / "notes.wav").write_text("not audio at all")
    with pytest.raises(MasteringError, match="not audio"):
        prepare_jingle(tmp_path / "notes.wav")


def test_a_long_programme_is_encoded_in_two_halves_joined_at_a_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio.master, "spare_core", lambda: True)
    tone = AudioSegment.from_wav(str(write_wav(sine(440, 0.3, 20.0), tmp_path / "t.wav")))
    mastered = master([tone, tone], 700)
    with Mp3Encoder(tmp_path / "out.mp3", "T", 40.7) as encoder:
        assert len(encoder.procs) == 2  # both started before the audio was ready
        encoder.finish(mastered)
    decoded = AudioSegment.from_file(str(tmp_path / "out.mp3"))
    assert abs(len(decoded) - len(mastered.segment)) < 300  # two encoder delays at most
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp3", "t.wav"]


@pytest.mark.parametrize("split", [False, True])
def test_lame_and_ffmpeg_encode_the_same_frames_with_the_same_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: bool
) -> None:
    monkeypatch.setattr(audio.master, "spare_core", lambda: split)
    tone = AudioSegment.from_wav(str(write_wav(sine(440, 0.3, 20.0), tmp_path / "t.wav")))
    mastered = master([tone, tone], 700)
    with Mp3Encoder(tmp_path / "lame.mp3", "Lịch tiếp dân", 40.7) as encoder:
        assert encoder.procs[0].args[0] == "lame"  # scripts/bootstrap.sh installs it
        encoder.finish(mastered)
    real_which = audio.master.shutil.which
    monkeypatch.setattr(
        audio.master.shutil, "which", lambda name: None if name == "lame" else real_which(name)
    )
    with Mp3Encoder(tmp_path / "ffmpeg.mp3", "Lịch tiếp dân", 40.7) as encoder:
        assert encoder.procs[0].args[0] == "ffmpeg"
        encoder.finish(mastered)
    decoded = [
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(tmp_path / name), "-f", "s16le", "-"],
            check=True, capture_output=True,
        ).stdout
        for name in ("lame.mp3", "ffmpeg.mp3")
    ]  # fmt: skip
    # The same frames; LAME's own Info header gives the exact length (ffmpeg's, 20 more).
    # Joined halves carry two encoder delays (within 0.2 s).
    size = len(mastered.segment.raw_data)  # bytes
    assert decoded[1][:size] == decoded[0][:size]
    assert len(decoded[0]) == size if not split else size < len(decoded[0]) < size + 2 * RATE // 5
    for name in ("lame.mp3", "ffmpeg.mp3"):
        title = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format_tags=title", "-of", "csv=p=0",
             str(tmp_path / name)],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        assert title == "Lịch tiếp dân"


@pytest.mark.parametrize(
    ("loadavg", "spare"),
    [("0.40 0.30 0.20 1/90 4242", True), ("1.10 0.90 0.80 2/90 4242", False),
     ("4.10 4.00 3.50 5/90 4242", False)],
)  # fmt: skip
def test_a_core_is_spare_when_no_other_thread_is_runnable(
    monkeypatch: pytest.MonkeyPatch, loadavg: str, spare: bool
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(Path, "read_text", lambda self, *args, **kwargs: loadavg)
    assert audio.master.spare_core() is spare


def test_a_loaded_machine_encodes_a_long_programme_in_one_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audio.master, "spare_core", lambda: False)
    tone = AudioSegment.from_wav(str(write_wav(sine(440, 0.3, 20.0), tmp_path / "t.wav")))
    mastered = master([tone, tone], 700)
    with Mp3Encoder(tmp_path / "out.mp3", "T", 40.7) as encoder:
        assert len(encoder.procs) == 1
        encoder.finish(mastered)
    decoded = AudioSegment.from_file(str(tmp_path / "out.mp3"))
    assert abs(len(decoded) - len(mastered.segment)) < 150


def test_an_encoder_left_unused_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio.master, "spare_core", lambda: True)  # two encoders to stop
    with pytest.raises(MasteringError), Mp3Encoder(tmp_path / "out.mp3", "T", 40.0) as encoder:
        raise MasteringError("mastering failed")
    assert all(proc.returncode is not None for proc in encoder.procs)
    assert not (tmp_path / "out.mp3.part2").exists()


def test_trimming_in_place_keeps_what_pydub_keeps() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 5, 230, 4410, 22050, 60000):
        for quiet in (0, 90, 120):  # below, near and above the -50 dBFS of silence
            pcm = rng.integers(-quiet, quiet + 1, n).astype(np.int16)
            pcm[n // 3 : n // 2] = rng.integers(-5000, 5000, n // 2 - n // 3)
            part = AudioSegment(pcm.tobytes(), frame_rate=RATE, sample_width=2, channels=1)
            kept, padding = audio.master._trimmed(part)
            if kept.dtype == np.int16:  # else pydub's own trimming, already a signal
                kept = kept / np.float32(32768)
            got = np.concatenate([kept, np.zeros(padding, np.float32)])
            assert np.array_equal(got, to_signal(audio.master.trim_silence(part)))


def test_the_limiters_loudness_is_worked_out_from_block_sums_as_from_its_samples() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0, 0.05, RATE * 20) * (1 + np.sin(np.arange(RATE * 20) / 900) ** 8 * 8)
    band, weighted = band_and_k_weighted(x, RATE, HORN_BAND)
    index = np.flatnonzero(np.abs(band) >= 0.2)
    steps = audio.master.step_energies(weighted, RATE)
    moments = audio.master._Moments(weighted, len(steps), index, None)
    for scale in (2.0, 3.0):
        gains = audio.master.limiter_blocks(len(band), index, np.abs(band[index]) * scale)
        assert gains is not None
        curve = audio.master.limiter_curve(len(band), index, np.abs(band[index]) * scale)
        assert curve is not None
        samples = curve.apply(weighted * np.float32(scale))
        expected = audio.master.step_energies(samples, RATE)
        assert np.allclose(moments.energies(steps, scale, gains), expected, rtol=1e-5)
