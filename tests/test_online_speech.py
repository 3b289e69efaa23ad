"""A district whose policy forbids sending text to an outside service: with
LOA_ONLINE_SPEECH=off gTTS never runs, speech is made on the server, and the panel says so."""

from dataclasses import replace

import pytest
from flask.testing import FlaskClient

from scheduler.settings import Settings
from tests.conftest import Api
from tests.test_panel import Panel


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, online_speech=False, tts_engine="auto")


def test_no_text_leaves_the_server_and_the_engine_is_recorded(
    api: Api, google_tts: list[str]
) -> None:
    bulletin = api.post("/bulletins", {"title": "Thông báo", "text": "Lịch tiếp công dân."}).json
    audio = api.post(f"/bulletins/{bulletin['id']}/audio", {"engine": "auto"}).json
    assert audio["engine"] == "espeak" and audio["fallback_reason"] is None
    assert google_tts == []  # the network seam was never asked
    r = api.post(f"/bulletins/{bulletin['id']}/audio", {"engine": "gtts"})
    assert r.status_code == 422 and "not configured" in r.json["detail"]
    assert google_tts == []


def test_the_panel_says_online_speech_is_off(client: FlaskClient) -> None:
    panel = Panel(client)
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/bulletins")
    assert "Giọng đọc trực tuyến (gTTS) đã tắt theo quy định của huyện" in page
    assert 'value="gtts"' not in page
