"""Speech features through the API and the panel: voices, lexicon, jingles, import."""

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from scheduler.context import Loa
from tests.conftest import DATA, Api
from tests.test_panel import Panel


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    p = Panel(client)
    p.login("trungtam", "loa-trungtam")
    return p


def tone(tmp_path: Path, seconds: float = 1.5) -> bytes:
    out = tmp_path / "tone.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
         f"sine=frequency=523:duration={seconds}", str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()


def test_a_bulletin_keeps_how_it_is_spoken(api: Api) -> None:
    r = api.post(
        "/bulletins",
        {"title": "T", "text": "Xin chào bà con.", "engine": "espeak", "voice": "vi-vn-x-south",
         "speed": 1.2},
    )  # fmt: skip
    assert r.status_code == 201, r.json
    assert (r.json["engine"], r.json["voice"], r.json["speed"]) == ("espeak", "vi-vn-x-south", 1.2)
    audio = api.post(f"/bulletins/{r.json['id']}/audio").json
    assert (audio["engine"], audio["voice"]) == ("espeak", "vi-vn-x-south")
    assert audio["loudness_lufs"] == pytest.approx(-16.0, abs=0.5)
    assert audio["true_peak_dbtp"] <= -1.0
    again = api.post(f"/bulletins/{r.json['id']}/audio", {"voice": "vi"}).json
    assert again["voice"] == "vi" and again["sha256"] != audio["sha256"]
    assert api.get(f"/bulletins/{r.json['id']}").json["voice"] == "vi"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"voice": "klingon"}, "invalid_voice"),
        ({"engine": "piper"}, "invalid_engine"),
        ({"speed": 3}, "invalid_body"),
        ({"intro_jingle_id": 42}, "unknown_jingle"),
    ],
)
def test_a_voice_this_server_cannot_speak_is_refused(
    api: Api, fields: dict[str, object], code: str
) -> None:
    r = api.post("/bulletins", {"title": "T", "text": "Xin chào.", **fields})
    if code == "invalid_engine":  # piper exists as an engine, but not on this server
        assert r.status_code == 201
        r = api.post(f"/bulletins/{r.json['id']}/audio")
        assert (r.status_code, r.json["error"]) == (422, "invalid_speech_request")
        assert "not configured" in r.json["detail"]
        return
    assert r.status_code in (400, 422) and r.json["error"] == code
    assert api.get("/bulletins").json == []


def test_the_lexicon_changes_how_bulletins_are_read(api: Api, api_for: Callable[..., Api]) -> None:
    assert (
        api.post("/lexicon", {"term": "HTXNN", "spoken": "hợp tác xã nông nghiệp"}).status_code
        == 201
    )
    assert api.get("/lexicon").json == [{"term": "HTXNN", "spoken": "hợp tác xã nông nghiệp"}]
    bulletin_id = api.post("/bulletins", {"title": "T", "text": "Họp HTXNN Thọ Sơn."}).json["id"]
    api.post(f"/bulletins/{bulletin_id}/approve")
    r = api.post(f"/bulletins/{bulletin_id}/audio", {"engine": "espeak"})
    assert r.status_code == 200
    bad = api.post("/lexicon", {"term": "X", "spoken": "số 5"})
    assert (bad.status_code, bad.json["error"]) == (422, "invalid_term")
    assert api_for("reporter").post("/lexicon", {"term": "A", "spoken": "a"}).status_code == 403
    assert api.call("DELETE", "/lexicon/HTXNN").status_code == 200
    assert api.call("DELETE", "/lexicon/HTXNN").status_code == 404


def test_the_spoken_text_uses_the_lexicon(panel: Panel, api: Api) -> None:
    api.post("/lexicon", {"term": "HTXNN", "spoken": "hợp tác xã nông nghiệp"})
    bulletin_id = api.post("/bulletins", {"title": "T", "text": "Họp HTXNN lúc 7h."}).json["id"]
    page = panel.get(f"/bulletins/{bulletin_id}")
    assert "họp hợp tác xã nông nghiệp lúc bảy giờ" in page


def test_a_document_becomes_a_draft_bulletin(api: Api) -> None:
    docx = (DATA / "ke-hoach-tuyen-truyen-cchc-2021.docx").read_bytes()
    r = api.call(
        "POST", "/bulletins/import",
        data={"file": (io.BytesIO(docx), "ke-hoach.docx"), "topic": "CCHC"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert r.status_code == 201, r.json
    assert r.json["title"] == "Kế hoạch tuyên truyền cải cách hành chính năm 2021"
    assert r.json["status"] == "draft" and r.json["topic"] == "CCHC"
    assert r.json["text"].startswith("Thực hiện Kế hoạch số 4911/KH-UBND")
    bad = api.call(
        "POST", "/bulletins/import",
        data={"file": (io.BytesIO(b"not a docx"), "x.docx")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert (bad.status_code, bad.json["error"]) == (422, "invalid_document")
    assert len(api.get("/bulletins").json) == 1


def test_the_panel_imports_a_document_and_shows_its_spoken_text(panel: Panel) -> None:
    docx = (DATA / "ke-hoach-tuyen-truyen-cchc-2021.docx").read_bytes()
    r = panel.client.post(
        "/bulletins/import",
        data={"document": (io.BytesIO(docx), "ke-hoach.docx"), "csrf_token": panel.csrf()},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    page = r.get_data(as_text=True)
    assert "Đã nhập văn bản" in page
    assert "kế hoạch số bốn nghìn chín trăm mười một ngày hai mươi chín tháng mười hai" in page


def test_jingles_are_uploaded_matched_and_framing_the_speech(
    panel: Panel, api: Api, loa: Loa, tmp_path: Path
) -> None:
    r = panel.client.post(
        "/jingles",
        data={"name": "Nhạc hiệu", "file": (io.BytesIO(tone(tmp_path)), "t.mp3"),
              "csrf_token": panel.csrf()},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    assert "Đã thêm nhạc hiệu" in r.get_data(as_text=True)
    bad = panel.client.post(
        "/jingles",
        data={"name": "Rác", "file": (io.BytesIO(b"garbage"), "x.mp3"),
              "csrf_token": panel.csrf()},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    assert "Tệp nhạc hiệu không phải âm thanh hợp lệ." in bad.get_data(as_text=True)
    assert list(loa.settings.jingle_dir.glob("*.wav")) and not list(
        loa.settings.jingle_dir.glob("tmp*")
    )
    plain = api.post("/bulletins", {"title": "T", "text": "Xin chào bà con.", "engine": "espeak"})
    framed = api.post(
        "/bulletins",
        {"title": "T", "text": "Xin chào bà con.", "engine": "espeak", "intro_jingle_id": 1,
         "outro_jingle_id": 1},
    )  # fmt: skip
    a = api.post(f"/bulletins/{plain.json['id']}/audio").json
    b = api.post(f"/bulletins/{framed.json['id']}/audio").json
    assert b["duration_seconds"] == pytest.approx(a["duration_seconds"] + 2 * 1.9, abs=0.3)


def test_the_panel_renders_with_the_chosen_speed(panel: Panel, api: Api) -> None:
    bulletin_id = api.post(
        "/bulletins", {"title": "T", "text": "Xin chào bà con xã Thọ Sơn."}
    ).json["id"]
    page = panel.post(
        f"/bulletins/{bulletin_id}/render", {"engine": "espeak", "voice": "vi", "speed": "1.5"}
    )
    assert "Đã tạo âm thanh." in page
    assert api.get(f"/bulletins/{bulletin_id}").json["speed"] == 1.5
    page = panel.post(f"/bulletins/{bulletin_id}/render", {"engine": "espeak", "speed": "fast"})
    assert "Tốc độ đọc phải từ 0,5 đến 2." in page


def test_the_lexicon_page_tries_saves_and_deletes(panel: Panel) -> None:
    page = panel.post("/lexicon", {"term": "TTVH", "spoken": "trung tâm văn hóa"})
    assert "Đã lưu." in page and "trung tâm văn hóa" in page
    assert "trung tâm văn hóa xã" in panel.get("/lexicon?try=TTVH+xã")
    page = panel.post("/lexicon/delete", {"term": "TTVH"})
    assert "Chưa có từ nào" in page


def test_correcting_an_approved_bulletin_returns_it_to_draft(api: Api, panel: Panel) -> None:
    bulletin_id = api.approved_bulletin()
    api.post(f"/bulletins/{bulletin_id}/audio", {"engine": "espeak"})
    r = api.call("PATCH", f"/bulletins/{bulletin_id}", {"topic": "ATGT"})
    assert (r.json["status"], r.json["topic"]) == ("approved", "ATGT")  # not what is said
    r = api.call("PATCH", f"/bulletins/{bulletin_id}", {"text": "UBND xã thông báo mới."})
    assert (r.json["status"], r.json["audio"]) == ("draft", None)
    bad = api.call("PATCH", f"/bulletins/{bulletin_id}", {"text": "   "})
    assert (bad.status_code, bad.json["error"]) == (422, "empty_text")
    page = panel.post(
        f"/bulletins/{bulletin_id}/edit",
        {"title": "Thông báo", "text": "Họp lúc 7h.", "topic": "", "priority": "priority"},
    )
    assert "Đã lưu." in page and "họp lúc bảy giờ" in page
    assert api.get(f"/bulletins/{bulletin_id}").json["priority"] == "priority"


def test_text_no_voice_can_read_is_explained_in_the_panel(panel: Panel, api: Api) -> None:
    bulletin_id = api.post("/bulletins", {"title": "T", "text": "Xin chào 你好."}).json["id"]
    page = panel.post(f"/bulletins/{bulletin_id}/render", {"engine": "espeak"})
    assert "Không thể tạo âm thanh cho nội dung này." in page and "U+4F60" in page
