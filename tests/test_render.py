import json
import subprocess
from pathlib import Path

import pytest

from audio.master import prepare_jingle
from audio.render import Renderer, RenderError, file_sha256, unsupported_characters
from audio.tts import EspeakEngine, GttsEngine, PiperEngine, TtsError, sentence_chunks
from tests.conftest import DATA

TEXT = "UBND xã Thọ Sơn thông báo lịch tiếp công dân từ 7h30."
SEED = (DATA / "seed-section-1.txt").read_text(encoding="utf-8")


def renderer(tmp_path: Path, timeout: float = 2.0) -> Renderer:
    return Renderer(tmp_path / "audio", {"gtts": GttsEngine(timeout), "espeak": EspeakEngine()})


def probe(path: Path) -> dict[str, object]:
    entries = "format=duration:format_tags=title:stream=codec_name,channels"
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    data: dict[str, object] = json.loads(out.stdout)
    return data


def test_espeak_renders_a_mono_mp3_with_its_title(tmp_path: Path) -> None:
    speech = renderer(tmp_path).render(TEXT, title="Lịch tiếp dân", engine="espeak")
    info = probe(speech.path)
    assert info["streams"] == [{"codec_name": "mp3", "channels": 1}]  # type: ignore[comparison-overlap]
    fmt = info["format"]
    assert isinstance(fmt, dict)
    assert fmt["tags"]["title"] == "Lịch tiếp dân"
    assert abs(float(fmt["duration"]) - speech.duration_seconds) < 0.2
    assert speech.duration_seconds > 2
    assert speech.engine == "espeak"
    assert speech.sha256 == file_sha256(speech.path)
    assert "ủy ban nhân dân" in speech.spoken_text


def test_an_unchanged_request_is_served_from_the_cache(tmp_path: Path) -> None:
    r = renderer(tmp_path)
    first = r.render(TEXT, title="T", engine="espeak")
    mtime = first.path.stat().st_mtime_ns
    second = r.render(TEXT, title="T", engine="espeak")
    assert second == first
    assert second.path.stat().st_mtime_ns == mtime
    assert r.render(TEXT + " Xin cảm ơn.", title="T", engine="espeak").sha256 != first.sha256


def test_auto_falls_back_to_espeak_when_google_is_unreachable(tmp_path: Path) -> None:
    speech = renderer(tmp_path).render(TEXT, title="T", engine="auto")
    assert speech.engine == "espeak"
    assert speech.fallback_reason is not None
    assert "gtts" in speech.fallback_reason


def test_auto_uses_google_when_it_answers(tmp_path: Path, google_tts: list[str]) -> None:
    speech = renderer(tmp_path).render(TEXT, title="T", engine="auto")
    assert speech.engine == "gtts"
    assert speech.fallback_reason is None
    assert google_tts and "translate.google" in google_tts[0]
    assert speech.duration_seconds > 0.5


def test_gtts_alone_fails_clearly_without_internet(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="gtts"):
        renderer(tmp_path).render(TEXT, title="T", engine="gtts")
    assert not list((tmp_path / "audio").glob("*.mp3"))


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("   \n ", {}, "empty"),
        ("x" * 20001, {}, "limit"),
        (TEXT, {"engine": "festival"}, "unknown engine"),
        (TEXT, {"speed": 5.0}, "speed"),
    ],
)
def test_bad_requests_are_refused_before_any_work(
    tmp_path: Path, text: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        renderer(tmp_path).render(text, title="T", **options)  # type: ignore[arg-type]


def test_an_unknown_voice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="unknown voice 'klingon'"):
        renderer(tmp_path).render(TEXT, title="T", engine="espeak", voice="klingon")


def test_the_mp3_measures_minus_16_lufs_and_under_minus_1_dbtp_with_ffmpeg(
    tmp_path: Path,
) -> None:
    from tests.test_loudness import ebur128

    speech = renderer(tmp_path).render(SEED, title="Kế hoạch", engine="espeak")
    lufs, peak = ebur128(speech.path)
    assert lufs == pytest.approx(-16.0, abs=0.5)
    assert peak <= -1.0
    assert speech.loudness_lufs == pytest.approx(lufs, abs=0.5)


def test_google_speech_is_mastered_the_same_way(tmp_path: Path, google_tts: list[str]) -> None:
    from tests.test_loudness import ebur128

    speech = renderer(tmp_path).render(TEXT, title="T", engine="gtts")
    lufs, peak = ebur128(speech.path)
    assert lufs == pytest.approx(-16.0, abs=1.0)
    assert peak <= -1.0


def test_gtts_retries_a_failed_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speech_mp3: bytes
) -> None:
    import base64

    import requests

    calls: list[int] = []
    encoded = base64.b64encode(speech_mp3).decode()

    def flaky(self: object, request: requests.PreparedRequest, **kw: object) -> requests.Response:
        calls.append(1)
        if len(calls) == 1:
            raise requests.ConnectTimeout("timed out")
        response = requests.Response()
        response.status_code = 200
        response._content = f'[["wrb.fr","jQ1olc","[\\"{encoded}\\"]"]]\n'.encode()
        response.request = request
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", flaky)
    engine = GttsEngine(timeout=1, attempts=2, backoff=0)
    assert len(engine.synthesize("Xin chào bà con.", "vi", 1.0)) > 300
    assert len(calls) == 2


def test_long_text_goes_to_google_in_sentence_chunks() -> None:
    sentences = [f"Câu số {i} của bản tin nói về cải cách hành chính ở xã." for i in range(20)]
    chunks = sentence_chunks(" ".join(sentences), 400)
    assert len(chunks) > 1
    assert all(len(c) <= 400 and c.endswith(".") for c in chunks)
    assert " ".join(chunks) == " ".join(sentences)


def test_a_regional_voice_is_spoken_by_the_engine_that_has_it(
    tmp_path: Path, google_tts: list[str]
) -> None:
    speech = renderer(tmp_path).render(TEXT, title="T", engine="auto", voice="vi-vn-x-south")
    assert (speech.engine, speech.voice) == ("espeak", "vi-vn-x-south")
    assert google_tts == []


def test_speed_changes_the_duration(tmp_path: Path) -> None:
    r = renderer(tmp_path)
    normal = r.render(TEXT, title="T", engine="espeak").duration_seconds
    fast = r.render(TEXT, title="T", engine="espeak", speed=1.5).duration_seconds
    assert fast < normal * 0.8


def test_jingles_frame_the_speech_and_change_the_cache_key(tmp_path: Path) -> None:
    tone = tmp_path / "tone.wav"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=523:duration=2",
         str(tone)],
        check=True,
    )  # fmt: skip
    prepared = tmp_path / "jingle.wav"
    prepare_jingle(tone).export(str(prepared), format="wav")
    r = renderer(tmp_path)
    plain = r.render(TEXT, title="T", engine="espeak")
    framed = r.render(TEXT, title="T", engine="espeak", intro=prepared, outro=prepared)
    assert framed.sha256 != plain.sha256
    assert framed.duration_seconds == pytest.approx(plain.duration_seconds + 2 * 2.4, abs=0.3)


@pytest.mark.parametrize("text", ["Xin chào 你好", "Thông báo 📢 khẩn", "Dòng\x07chuông"])
def test_characters_no_voice_can_read_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(RenderError, match="characters no voice can read"):
        renderer(tmp_path).render(text, title="T", engine="espeak")


def test_vietnamese_and_administrative_symbols_are_accepted() -> None:
    assert unsupported_characters("Ủy ban 50% 25°C “trích dẫn” – số 1/2 & m² … §") == []
    assert unsupported_characters("Ж and ☎") == ["Ж", "☎"]


def test_piper_explains_what_is_missing(tmp_path: Path) -> None:
    engine = PiperEngine(tmp_path / "vi_VN-voice.onnx")
    with pytest.raises(TtsError, match="piper"):
        engine.synthesize("Xin chào", "vi", 1.0)
    r = Renderer(tmp_path, {"espeak": EspeakEngine()})
    with pytest.raises(RenderError, match="piper engine is not configured"):
        r.render(TEXT, title="T", engine="piper")


PIPER_MODEL = DATA / "piper-test-voice.onnx"


def test_piper_speaks_with_the_administrators_voice_model(tmp_path: Path) -> None:
    engine = PiperEngine(PIPER_MODEL)
    normal = engine.synthesize("Xin chào bà con xã Thọ Sơn.", "vi", 1.0)
    fast = engine.synthesize("Xin chào bà con xã Thọ Sơn.", "vi", 2.0)
    assert normal.frame_rate == 22050 and len(normal) > 500
    assert len(fast) == pytest.approx(len(normal) / 2, rel=0.1)


def test_auto_prefers_the_local_piper_voice_to_espeak_when_offline(tmp_path: Path) -> None:
    r = Renderer(
        tmp_path / "audio",
        {"gtts": GttsEngine(1), "piper": PiperEngine(PIPER_MODEL), "espeak": EspeakEngine()},
    )
    speech = r.render(TEXT, title="T", engine="auto")
    assert speech.engine == "piper"
    assert speech.fallback_reason is not None and "gtts" in speech.fallback_reason


def test_an_unreachable_google_is_not_asked_again_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    asked: list[str] = []

    def down(self: object, request: requests.PreparedRequest, **kw: object) -> None:
        asked.append(request.url or "")
        raise requests.ConnectionError("no route to host")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", down)
    engine = GttsEngine(timeout=1, attempts=2, backoff=0)
    with pytest.raises(TtsError, match="unreachable or refused"):
        engine.synthesize("Xin chào.", "vi", 1.0)
    assert len(asked) == 2
    with pytest.raises(TtsError, match="not tried again yet"):
        engine.synthesize("Xin chào.", "vi", 1.0)
    assert len(asked) == 2


PARAGRAPHS = [
    "Ủy ban nhân dân xã thông báo lịch tiếp công dân.",
    "Bà con mang theo căn cước công dân, sổ hộ khẩu.",
    "Xin trân trọng cảm ơn bà con.",
]


def count_espeak_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    import audio.tts

    runs: list[list[str]] = []
    real_run = subprocess.run

    def run(argv: list[str], **kwargs: object) -> object:
        runs.append(argv)
        return real_run(argv, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(audio.tts.subprocess, "run", run)
    return runs


def test_paragraphs_are_spoken_by_one_espeak_process_and_cut_apart_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from audio.master import trim_silence

    engine = EspeakEngine()
    alone = [trim_silence(engine.synthesize(p, "vi", 1.0)) for p in PARAGRAPHS]
    runs = count_espeak_runs(monkeypatch)
    together = engine.synthesize_paragraphs(PARAGRAPHS, "vi", 1.0)
    assert len(runs) == 1 and "-m" in runs[0]  # SSML, with breaks between paragraphs
    assert len(together) == len(PARAGRAPHS)
    for part, single in zip(together, alone, strict=True):
        assert len(trim_silence(part)) == pytest.approx(len(single), abs=150)


def test_espeak_speaks_paragraphs_one_by_one_when_it_cannot_find_them_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import audio.tts

    # So short a gap that the pauses between words count as paragraph breaks too.
    monkeypatch.setattr(audio.tts, "PARAGRAPH_GAP_MS", 50)
    runs = count_espeak_runs(monkeypatch)
    parts = EspeakEngine().synthesize_paragraphs(PARAGRAPHS, "vi", 1.0)
    assert len(runs) == 1 + len(PARAGRAPHS)
    assert len(parts) == len(PARAGRAPHS) and all(len(p) > 500 for p in parts)


def silences_ms(path: Path, threshold_dbfs: float = -50.0) -> list[int]:
    """Lengths of the silent stretches (10 ms frames under the threshold) of an MP3."""
    from pydub import AudioSegment

    audio = AudioSegment.from_file(str(path))
    silent = [audio[i : i + 10].dBFS < threshold_dbfs for i in range(0, len(audio) - 10, 10)]
    runs, current = [], 0
    for quiet in [*silent, False]:
        if quiet:
            current += 10
        elif current:
            runs.append(current)
            current = 0
    return runs


def test_paragraphs_are_separated_by_the_paragraph_pause(tmp_path: Path) -> None:
    r = Renderer(tmp_path / "audio", {"espeak": EspeakEngine()}, pause_ms=700)
    speech = r.render("\n".join(PARAGRAPHS), title="T", engine="espeak")
    pauses = [ms for ms in silences_ms(speech.path) if ms >= 500]
    assert len(pauses) == len(PARAGRAPHS) - 1
    assert all(pause == pytest.approx(700, abs=60) for pause in pauses)
