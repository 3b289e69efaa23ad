"""The panel's bulletins of three kinds (speech, a recording, a relay), its slots page and
quiet hours. The clock stands at Thursday 2026-11-26 08:00 in Triệu Sơn."""

import io
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from scheduler import areas
from scheduler.context import Loa
from scheduler.models import Broadcast, Bulletin, Slot, Status
from tests.conftest import THO_SON, Api
from tests.test_panel import Panel

STREAM = "http://radio.thanhhoa.example/live.mp3"


class Browser(Panel):
    """A panel user whose forms may fail: answers keep their status code."""

    def submit(self, path: str, data: dict[str, Any]) -> TestResponse:
        multipart = any(isinstance(v, tuple) for v in data.values())
        return self.client.post(
            path,
            data={**data, "csrf_token": self.csrf()},
            content_type="multipart/form-data" if multipart else None,
            follow_redirects=True,
        )


@pytest.fixture
def centre(client: FlaskClient) -> Browser:
    browser = Browser(client)
    browser.login("trungtam", "loa-trungtam")
    return browser


def wav(tmp_path: Path, seconds: float = 2.0, frequency: int = 500) -> tuple[io.BytesIO, str]:
    """A short tone as a WAV file, ready to post as a form's file field."""
    path = tmp_path / f"tone-{frequency}-{seconds}.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency={frequency}:duration={seconds},volume=-10dB,adelay=300,apad=pad_dur=0.3",
         "-ac", "2", "-ar", "44100", str(path)],
        check=True,
    )  # fmt: skip
    return io.BytesIO(path.read_bytes()), path.name


def latest(loa: Loa) -> Bulletin:
    with loa.transaction() as s:
        b = s.scalars(select(Bulletin).order_by(Bulletin.id.desc())).first()
        assert b is not None
        _ = b.audio
        return b


def count(loa: Loa) -> int:
    with loa.transaction() as s:
        return len(s.scalars(select(Bulletin.id)).all())


def text(r: TestResponse) -> str:
    return r.get_data(as_text=True)


# --- bulletins of three kinds -------------------------------------------------------------


def test_the_new_bulletin_page_offers_speech_a_recording_or_a_relay(centre: Browser) -> None:
    page = centre.get("/bulletins")
    assert "Văn bản đọc bằng giọng nói" in page and "Tệp ghi âm" in page and "Tiếp sóng" in page
    assert 'name="kind" value="speech"' in page and 'name="text"' in page
    recording = centre.get("/bulletins?kind=recording")
    assert 'name="kind" value="recording"' in recording
    assert 'enctype="multipart/form-data"' in recording
    assert 'type="file" name="file"' in recording
    assert "MP3, WAV hoặc OGG, tối đa 10 phút, 100 MB" in recording
    relay = centre.get("/bulletins?kind=relay")
    assert 'name="stream_url"' in relay and 'name="minutes"' in relay
    assert "Thời lượng (phút)" in relay


def test_a_speech_bulletin_made_in_the_panel_keeps_its_voice_controls(
    centre: Browser, loa: Loa
) -> None:
    r = centre.submit(
        "/bulletins", {"kind": "speech", "title": "Tiếp dân", "text": "UBND xã tiếp dân."}
    )
    page = text(r)
    assert r.status_code == 200 and "Đã tạo bản tin." in page
    assert latest(loa).kind == "speech"
    assert "Tạo âm thanh" in page and "Văn bản đọc" in page


def test_the_centre_uploads_a_recording_and_hears_it_on_its_page(
    centre: Browser, loa: Loa, tmp_path: Path
) -> None:
    r = centre.submit(
        "/bulletins",
        {"kind": "recording", "title": "Lời kêu gọi của Chủ tịch xã", "text": "Ghi âm sáng nay",
         "priority": "priority", "file": wav(tmp_path)},
    )  # fmt: skip
    page = text(r)
    assert r.status_code == 200 and "Đã tạo bản tin." in page
    b = latest(loa)
    assert (b.kind, b.title, b.text, b.priority) == (
        "recording", "Lời kêu gọi của Chủ tịch xã", "Ghi âm sáng nay", "priority"
    )  # fmt: skip
    assert b.audio is not None and 2.0 <= b.audio.duration_seconds <= 2.7
    assert "Loại: ghi âm" in page and "<audio controls" in page
    assert f"/bulletins/{b.id}/recording" in page  # the form to upload a new file
    assert "Tạo âm thanh" not in page  # no speech to render
    audio = centre.client.get(f"/bulletins/{b.id}/audio.mp3")
    assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
    assert 'class="badge k-recording">ghi âm' in centre.get("/bulletins")


def test_a_recording_larger_than_the_usual_request_limit_is_accepted(
    centre: Browser, loa: Loa, tmp_path: Path
) -> None:
    big = wav(tmp_path, seconds=26)  # 4.6 MB of WAV: over the panel's 4 MB for other forms
    assert len(big[0].getvalue()) > 4 * 2**20
    r = centre.submit("/bulletins", {"kind": "recording", "title": "Chương trình dài", "file": big})
    assert r.status_code == 200 and "Đã tạo bản tin." in text(r)
    assert latest(loa).kind == "recording"


def test_a_file_that_is_not_audio_keeps_the_typed_title_and_says_why_in_vietnamese(
    centre: Browser, loa: Loa
) -> None:
    r = centre.submit(
        "/bulletins",
        {"kind": "recording", "title": "Lời kêu gọi", "topic": "PCCC", "text": "ghi chú",
         "file": (io.BytesIO(b"this is not audio at all" * 10), "loi-keu-goi.wav")},
    )  # fmt: skip
    page = text(r)
    assert r.status_code == 422
    assert "Tệp không phải âm thanh MP3, WAV hoặc OGG hợp lệ" in page
    assert 'name="title" value="Lời kêu gọi"' in page and 'value="PCCC"' in page
    assert ">ghi chú</textarea>" in page
    assert 'name="kind" value="recording"' in page  # still the recording form
    assert count(loa) == 0  # nothing kept


def test_a_recording_without_a_title_is_refused_before_the_file_is_read(
    centre: Browser, tmp_path: Path
) -> None:
    r = centre.submit("/bulletins", {"kind": "recording", "title": " ", "file": wav(tmp_path)})
    assert r.status_code == 422 and "Tiêu đề đang trống." in text(r)


def test_a_recording_gets_a_new_file_and_goes_back_to_draft(
    centre: Browser, loa: Loa, tmp_path: Path
) -> None:
    centre.submit("/bulletins", {"kind": "recording", "title": "Ghi âm", "file": wav(tmp_path)})
    b = latest(loa)
    assert b.audio is not None
    first = b.audio.sha256
    centre.post(f"/bulletins/{b.id}/approve", {})
    page = text(centre.submit(f"/bulletins/{b.id}/recording", {"file": wav(tmp_path, 3.0, 700)}))
    assert "Đã tải lên tệp ghi âm mới." in page
    again = latest(loa)
    assert again.audio is not None and again.audio.sha256 != first and again.status == "draft"
    bad = centre.submit(f"/bulletins/{b.id}/recording", {"file": (io.BytesIO(b"x" * 64), "a.mp3")})
    assert "Tệp không phải âm thanh MP3, WAV hoặc OGG hợp lệ" in text(bad)


def test_rendering_speech_for_a_recording_is_refused_in_vietnamese(
    centre: Browser, loa: Loa, tmp_path: Path
) -> None:
    centre.submit("/bulletins", {"kind": "recording", "title": "Ghi âm", "file": wav(tmp_path)})
    b = latest(loa)
    page = text(centre.submit(f"/bulletins/{b.id}/render", {"engine": "espeak"}))
    assert "Bản tin này không đọc bằng giọng nói." in page


def test_the_centre_makes_a_relay_and_changes_its_stream_and_length(
    centre: Browser, loa: Loa
) -> None:
    r = centre.submit(
        "/bulletins",
        {"kind": "relay", "title": "Tiếp sóng Đài tỉnh", "stream_url": STREAM, "minutes": "30"},
    )
    page = text(r)
    assert r.status_code == 200 and "Đã tạo bản tin." in page
    b = latest(loa)
    assert b.kind == "relay" and b.audio is not None
    assert (b.audio.stream_url, b.audio.duration_seconds) == (STREAM, 1800)
    assert f"<code>{STREAM}</code>" in page and "30 phút" in page
    assert "<audio" not in page and "Tạo âm thanh" not in page
    assert centre.client.get(f"/bulletins/{b.id}/audio.mp3").status_code == 404  # no file
    other = "https://radio.thanhhoa.example/thoi-su.mp3"
    page = centre.post(f"/bulletins/{b.id}/relay", {"stream_url": other, "minutes": "1,5"})
    assert "Đã lưu." in page and f"<code>{other}</code>" in page
    b = latest(loa)
    assert b.audio is not None and (b.audio.stream_url, b.audio.duration_seconds) == (other, 90)
    assert 'class="badge k-relay">tiếp sóng' in centre.get("/bulletins")


def test_a_bad_stream_url_keeps_what_was_typed_and_says_why_in_vietnamese(
    centre: Browser, loa: Loa
) -> None:
    r = centre.submit(
        "/bulletins",
        {"kind": "relay", "title": "Tiếp sóng", "stream_url": "ftp://radio/live", "minutes": "30"},
    )
    page = text(r)
    assert r.status_code == 422 and "Địa chỉ luồng phát phải bắt đầu bằng http://" in page
    assert 'value="ftp://radio/live"' in page and 'value="30"' in page
    assert 'name="title" value="Tiếp sóng"' in page


def test_a_relay_too_long_or_without_minutes_is_refused_in_vietnamese(
    centre: Browser, loa: Loa
) -> None:
    fields = {"kind": "relay", "title": "Tiếp sóng", "stream_url": STREAM}
    too_long = centre.submit("/bulletins", {**fields, "minutes": "300"})
    assert too_long.status_code == 422
    assert "Thời lượng tiếp sóng từ 1 giây đến 4 giờ" in text(too_long)
    centre.submit("/bulletins", {**fields, "minutes": "10"})
    b = latest(loa)
    r = centre.submit(f"/bulletins/{b.id}/relay", {"stream_url": STREAM, "minutes": "mười"})
    page = text(r)
    assert r.status_code == 422 and "Thời lượng tiếp sóng từ 1 giây đến 4 giờ" in page
    assert 'value="mười"' in page  # the typed value stays in the form


def test_only_the_centre_may_create_bulletins_of_any_kind(client: FlaskClient) -> None:
    reporter = Browser(client)
    reporter.login("baocao", "loa-baocao")
    assert 'name="stream_url"' not in reporter.get("/bulletins?kind=relay")
    r = reporter.submit("/bulletins", {"kind": "relay", "title": "x", "stream_url": STREAM,
                                       "minutes": "5"})  # fmt: skip
    assert r.status_code == 422 and "Bạn không có quyền làm việc này." in text(r)


# --- slots --------------------------------------------------------------------------------


def slot_row(page: str, name: str) -> str:
    match = re.search(rf"<tr><td data-label=\"Tên\"><strong>{name}</strong>.*?</tr>", page, re.S)
    assert match, name
    return match.group(0)


def test_the_slots_page_is_linked_from_the_plan_and_lists_the_slots(centre: Browser) -> None:
    assert "/plan/slots" in centre.get("/plan") and "/plan/slots" in centre.get("/plan/placements")
    page = centre.get("/plan/slots")
    assert "Khung giờ và giờ yên tĩnh" in page
    morning = slot_row(page, "Buổi sáng")
    assert "05:30–" in morning and "Mọi ngày" in morning and "Tất cả các xã" in morning
    assert 'data-confirm="Bỏ khung giờ Buổi sáng (05:30–06:30)? Lịch sử phát vẫn' in morning


def test_the_centre_adds_a_slot_for_chosen_communes_and_days(centre: Browser, loa: Loa) -> None:
    page = centre.post(
        "/plan/slots",
        {"name": "Buổi trưa", "start": "11:30", "minutes": "20", "weekdays": ["1", "3", "5"],
         "target": "list", "communes": [THO_SON]},
    )  # fmt: skip
    assert "Đã thêm khung giờ Buổi trưa." in page
    row = slot_row(page, "Buổi trưa")
    assert "11:30–11:50" in row and "T2, T4, T6" in row and "Xã Thọ Sơn" in row
    with loa.transaction() as s:
        slot = s.scalars(select(Slot).where(Slot.name == "Buổi trưa")).one()
        assert (slot.start, slot.minutes, slot.weekdays, slot.all_communes) == (
            "11:30", 20, "135", False
        )  # fmt: skip
        assert [c.code for c in slot.communes] == [THO_SON]


def test_a_bad_slot_keeps_what_was_typed_and_says_why_in_vietnamese(centre: Browser) -> None:
    r = centre.submit(
        "/plan/slots", {"name": "Buổi tối", "start": "23:30", "minutes": "60", "target": "all"}
    )
    page = text(r)
    assert r.status_code == 422 and "Khung giờ kéo qua nửa đêm" in page
    assert 'value="Buổi tối"' in page and 'value="23:30"' in page and 'value="60"' in page
    r = centre.submit("/plan/slots", {"name": "Buổi tối", "start": "19:00", "minutes": "30",
                                      "target": "list"})  # fmt: skip
    assert r.status_code == 422 and "Hãy chọn ít nhất một xã." in text(r)


def test_the_centre_retires_a_slot_nothing_is_planned_in(centre: Browser, loa: Loa) -> None:
    centre.post("/plan/slots", {"name": "Buổi trưa", "start": "11:30", "minutes": "20",
                                "target": "all"})  # fmt: skip
    with loa.transaction() as s:
        slot_id = s.scalars(select(Slot.id).where(Slot.name == "Buổi trưa")).one()
    page = centre.post(f"/plan/slots/{slot_id}/remove", {})
    assert "Đã bỏ khung giờ Buổi trưa." in page and "<strong>Buổi trưa</strong>" not in page
    with loa.transaction() as s:
        slot = s.get(Slot, slot_id)
        assert slot is not None and not slot.active


def place_in_morning_slot(api: Api) -> int:
    """An approved bulletin placed in Thọ Sơn's 05:30 slot tomorrow; the slot's id."""
    bulletin = api.approved_bulletin(title="CCHC")
    slot = next(s["id"] for s in api.get("/slots").json if s["start"] == "05:30")
    rule = {"slots": [slot], "from": "2026-11-27", "to": "2026-11-27"}
    r = api.post("/placements", {"bulletin_id": bulletin, "rule": rule, "communes": [THO_SON]})
    assert r.status_code == 201, r.json
    return int(slot)


def test_a_slot_still_in_use_is_not_retired_and_says_so_in_vietnamese(
    centre: Browser, api: Api, loa: Loa
) -> None:
    slot_id = place_in_morning_slot(api)
    page = centre.post(f"/plan/slots/{slot_id}/remove", {})
    assert "Khung giờ còn lượt phát đã lên lịch; hãy hủy các lịch phát đó trước." in page
    with loa.transaction() as s:
        slot = s.get(Slot, slot_id)
        assert slot is not None and slot.active


def test_only_the_centre_changes_slots(client: FlaskClient, loa: Loa) -> None:
    reporter = Browser(client)
    reporter.login("baocao", "loa-baocao")
    page = reporter.get("/plan/slots")
    assert "Buổi sáng" in page and "Thêm khung giờ" not in page and "Đặt giờ yên tĩnh" not in page
    r = reporter.submit("/plan/slots", {"name": "Trưa", "start": "11:30", "minutes": "20"})
    assert r.status_code == 422 and "Bạn không có quyền làm việc này." in text(r)


# --- quiet hours --------------------------------------------------------------------------


def quiet_hours(loa: Loa, code: str) -> tuple[str | None, str | None]:
    with loa.transaction() as s:
        commune = areas.commune_by_code(s, code)
        return commune.quiet_start, commune.quiet_end


def test_the_centre_sets_and_clears_quiet_hours_for_a_commune(centre: Browser, loa: Loa) -> None:
    assert "Chưa xã nào có giờ yên tĩnh." in centre.get("/plan/slots")
    page = centre.post(
        "/plan/quiet-hours",
        {"start": "21:30", "end": "05:00", "target": "list", "communes": [THO_SON]},
    )
    assert "Đã đặt giờ yên tĩnh cho 1 xã; 0 buổi phát trong giờ đó đã bị hủy." in page
    assert "Xã Thọ Sơn — <strong>21:30–05:00</strong>" in page
    assert quiet_hours(loa, THO_SON) == ("21:30", "05:00")
    page = centre.post(
        "/plan/quiet-hours", {"start": "", "end": "", "target": "list", "communes": [THO_SON]}
    )
    assert "Đã bỏ giờ yên tĩnh của 1 xã." in page and "Chưa xã nào có giờ yên tĩnh." in page
    assert quiet_hours(loa, THO_SON) == (None, None)


def test_quiet_hours_for_all_communes_cancel_what_was_planned_in_them(
    centre: Browser, api: Api, loa: Loa
) -> None:
    place_in_morning_slot(api)
    page = centre.post("/plan/quiet-hours", {"start": "05:00", "end": "06:00", "target": "all"})
    assert "Đã đặt giờ yên tĩnh cho 34 xã; 1 buổi phát trong giờ đó đã bị hủy." in page
    with loa.transaction() as s:
        statuses = s.scalars(select(Broadcast.status)).all()
    assert statuses == [Status.CANCELLED.value]


def test_half_given_quiet_hours_keep_what_was_typed_and_say_why_in_vietnamese(
    centre: Browser, loa: Loa
) -> None:
    r = centre.submit(
        "/plan/quiet-hours", {"start": "21:30", "end": "", "target": "list", "communes": [THO_SON]}
    )
    page = text(r)
    assert r.status_code == 422 and "Hãy nhập cả giờ bắt đầu và giờ kết thúc" in page
    assert 'name="start" value="21:30"' in page
    assert f'value="{THO_SON}" checked' in page
    assert quiet_hours(loa, THO_SON) == (None, None)
    r = centre.submit("/plan/quiet-hours", {"start": "21:30", "end": "21:30", "target": "all"})
    assert r.status_code == 422 and "Thời điểm không hợp lệ." in text(r)


def test_a_broadcast_in_quiet_hours_is_refused_on_the_bulletin_page_in_vietnamese(
    centre: Browser, api: Api, loa: Loa
) -> None:
    centre.post("/plan/quiet-hours", {"start": "07:00", "end": "09:00", "target": "list",
                                      "communes": [THO_SON]})  # fmt: skip
    bulletin = api.approved_bulletin(title="Thông báo")
    page = centre.post(f"/bulletins/{bulletin}/schedule", {"communes": [THO_SON], "at": ""})
    assert "nằm trong giờ yên tĩnh của xã" in page
