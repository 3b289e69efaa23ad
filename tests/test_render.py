import json
import subprocess
from pathlib import Path

import pytest

from audio.render import Renderer, RenderError, file_sha256
from audio.tts import EspeakEngine, GttsEngine, TtsError

TEXT = "UBND xã Thọ Sơn thông báo lịch tiếp công dân từ 7h30."


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
