"""The week plan in the panel: calendar, placing a bulletin, cancelling, the bulletin page.

The clock stands at Thursday 2026-11-26 08:00 in Triệu Sơn (START): this week runs
Monday 23/11 to Sunday 29/11, the next one 30/11 to 06/12."""

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from scheduler.calendar import Item
from scheduler.context import Loa
from scheduler.models import Broadcast
from tests.conftest import START, THO_BINH, THO_SON, Api
from tests.test_panel import Panel
from web.planning import _district_entries

LONG = "Thông báo về cải cách hành chính của xã. " * 20  # about 35 s of speech


@pytest.fixture
def panel(client: FlaskClient) -> Panel:
    return Panel(client)


def slot_ids(api: Api) -> dict[str, int]:
    return {s["start"]: s["id"] for s in api.get("/slots").json}


def place(api: Api, bulletin_id: int, rule: dict[str, Any], **targets: Any) -> Any:
    r = api.post("/placements", {"bulletin_id": bulletin_id, "rule": rule, **targets})
    assert r.status_code == 201, r.json
    return r.json


def cells(page: str) -> dict[tuple[int, int], str]:
    """The calendar's cells by (column, row): column 2 is Monday, row 2 the first slot."""
    out = {}
    for chunk in re.split(r'<div class="cal-cell(?=[ "])', page)[1:]:
        m = re.search(r'style="--col: (\d+); --row: (\d+)"', chunk)
        assert m
        out[(int(m[1]), int(m[2]))] = chunk.split("</ul>")[0]
    return out


def broadcasts(loa: Loa, *where: Any) -> int:
    with loa.transaction() as s:
        return s.scalar(select(func.count()).select_from(Broadcast).where(*where)) or 0


def test_the_calendar_shows_a_bulletin_in_both_daily_slots_all_week(panel: Panel, api: Api) -> None:
    bulletin = api.approved_bulletin(title="CCHC tuần 49")
    rule = {"slots": list(slot_ids(api).values()), "from": "2026-11-30", "to": "2026-12-06"}
    place(api, bulletin, rule, communes=[THO_SON])
    panel.login("trungtam", "loa-trungtam")
    page = panel.get(f"/plan?date=2026-12-02&commune={THO_SON}")
    assert "Lịch phát — Xã Thọ Sơn" in page and "Tuần 49 · 30/11 – 06/12/2026" in page
    assert "Buổi sáng" in page and "Buổi chiều" in page and "Ngoài khung giờ" in page
    grid = cells(page)
    for day in range(2, 9):  # Monday to Sunday
        assert "CCHC tuần 49" in grid[(day, 2)] and ">05:30</time>" in grid[(day, 2)]
        assert "CCHC tuần 49" in grid[(day, 3)] and ">17:00</time>" in grid[(day, 3)]
        assert "CCHC tuần 49" not in grid[(day, 4)]  # nothing outside slots
    assert "Thứ Hai" in page and "Chủ nhật" in page
    assert "14</strong> lượt phát trong tuần" in page
    shown = re.sub(r"<[^>]+>", " ", page)  # what a reader sees: hours and minutes, local
    assert ">05:30</time>" in page and not re.search(r"\d:\d\d:\d\d", shown)
    assert "date=2026-11-23" in page and "date=2026-12-07" in page  # previous, next week


def test_a_week_past_the_planning_horizon_says_its_days_are_added_later(
    panel: Panel, loa: Loa
) -> None:
    panel.login("trungtam", "loa-trungtam")
    assert "Đã lập lịch đến ngày" not in panel.get("/plan")  # this week: planned
    last = (loa.now() + timedelta(days=loa.settings.plan_days)).astimezone(loa.settings.timezone)
    page = panel.get(f"/plan?date={(last + timedelta(days=7)).date().isoformat()}")
    assert f"Đã lập lịch đến ngày {last:%d/%m/%Y}; các ngày sau được lập dần mỗi ngày." in page


def test_the_district_view_counts_communes_per_bulletin(panel: Panel, api: Api) -> None:
    bulletin = api.approved_bulletin(title="CCHC tuần 48")
    rule = {"slots": list(slot_ids(api).values()), "from": "2026-11-27", "to": "2026-11-29"}
    place(api, bulletin, rule, communes="all")
    panel.login("trungtam", "loa-trungtam")
    page = panel.get("/plan")  # this week
    assert "Lịch phát — Toàn huyện" in page
    grid = cells(page)
    for day in (6, 7, 8):  # Friday to Sunday
        for row in (2, 3):
            assert "CCHC tuần 48</span> · <strong>34 xã</strong>" in grid[(day, row)]
            assert "Xã Thọ Sơn" not in grid[(day, row)]  # counted, not listed
    assert "CCHC tuần 48" not in grid[(5, 3)]  # Thursday: the rule starts on Friday
    assert "204</strong> lượt phát trong tuần" in page
    assert "Chọn một xã để xem đúng hàng đợi của xã." in page


def test_a_commune_view_lists_its_queue_in_play_order_and_marks_an_overflow(
    panel: Panel, api: Api
) -> None:
    noon = api.post("/slots", {"name": "Trưa", "start": "11:00", "minutes": 1}).json["id"]
    rule = {"slots": [noon], "from": "2026-11-27", "to": "2026-11-27"}
    first = api.approved_bulletin(LONG, title="Cải cách hành chính 1")
    second = api.approved_bulletin(LONG + " Hết.", title="Cải cách hành chính 2")
    urgent = api.approved_bulletin(
        "Lịch tiêm chủng cho trẻ em tuần này.", title="Tiêm chủng", priority="priority"
    )
    for bulletin in (first, second, urgent):
        place(api, bulletin, rule, communes=[THO_SON])
    panel.login("trungtam", "loa-trungtam")
    page = panel.get(f"/plan?commune={THO_SON}")
    # Rows: Buổi sáng 05:30, Trưa 11:00, Buổi chiều 17:00, outside slots; Friday is column 6.
    grid = cells(page)
    noon_cell = grid[(6, 3)]
    assert noon_cell.index("Tiêm chủng") < noon_cell.index("Cải cách hành chính 1")
    assert ">11:00</time>" in noon_cell and "ưu tiên" in noon_cell
    assert "Cải cách hành chính 2" not in noon_cell and "tràn" not in noon_cell
    afternoon = grid[(6, 4)]
    assert "Cải cách hành chính 2" in afternoon and ">17:00</time>" in afternoon
    assert "↪ tràn từ 11:00 27/11" in afternoon
    assert "Tràn: chuyển sang từ khung giờ trước đã đầy." in page  # the legend
    district = cells(panel.get("/plan"))
    assert "tràn ở 1 xã" in district[(6, 4)]


def test_overlapping_slots_are_marked_as_a_conflict_where_they_meet(panel: Panel, api: Api) -> None:
    r = api.post(
        "/slots", {"name": "Sáng sớm", "start": "06:00", "minutes": 30, "communes": [THO_SON]}
    )
    assert r.status_code == 201, r.json
    panel.login("trungtam", "loa-trungtam")
    page = panel.get(f"/plan?commune={THO_SON}")
    assert "⚠ Trùng giờ với khung Sáng sớm" in page and "⚠ Trùng giờ với khung Buổi sáng" in page
    assert "Trùng giờ" not in panel.get(f"/plan?commune={THO_BINH}")
    assert "Trùng giờ với khung Sáng sớm" in panel.get("/plan")


def test_placing_through_the_form_creates_broadcasts(panel: Panel, api: Api, loa: Loa) -> None:
    bulletin = api.approved_bulletin(title="Lịch tiếp dân")
    slots = slot_ids(api)
    panel.login("trungtam", "loa-trungtam")
    form = panel.get(f"/plan/new?bulletin={bulletin}")
    assert f'<option value="{bulletin}" selected>Lịch tiếp dân' in form
    page = panel.post(
        "/plan/new",
        {
            "bulletin": bulletin, "target": "list", "communes": [THO_SON, THO_BINH],
            "priority": "", "rule": "slots", "slots": [slots["05:30"], slots["17:00"]],
            "from": "2026-11-27", "to": "2026-11-28",
        },
    )  # fmt: skip
    assert "Đã tạo 8 lượt phát, 0 bị tràn sang khung giờ sau." in page
    assert "Lịch phát — Toàn huyện" in page and "Lịch tiếp dân</span> · <strong>2 xã" in page
    assert broadcasts(loa, Broadcast.bulletin_id == bulletin) == 8
    page = panel.post(
        "/plan/new",
        {"bulletin": bulletin, "target": "all", "priority": "emergency", "rule": "once",
         "once_at": "2026-11-27T09:15"},
    )  # fmt: skip
    assert "Đã tạo 34 lượt phát, 0 bị tràn sang khung giờ sau." in page
    assert "khẩn cấp" in page
    page = panel.post(
        "/plan/new",
        {"bulletin": bulletin, "target": "list", "communes": [THO_SON], "rule": "repeat",
         "repeat_at": "2026-11-30T07:00", "repeat": "3", "every": "30", "priority": ""},
    )  # fmt: skip
    assert "Đã tạo 3 lượt phát" in page and "Tuần 49" in page  # the week it starts in
    assert broadcasts(loa, Broadcast.bulletin_id == bulletin) == 8 + 34 + 3


def test_a_bad_form_keeps_what_was_typed_and_says_what_is_wrong(
    panel: Panel, api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    morning = slot_ids(api)["05:30"]
    panel.login("trungtam", "loa-trungtam")
    typed = {
        "bulletin": bulletin, "target": "list", "communes": [THO_BINH], "priority": "priority",
        "rule": "slots", "slots": [morning], "from": "2026-12-05", "to": "2026-12-01",
        "weekdays": ["1", "3"],
    }  # fmt: skip
    r = panel.client.post("/plan/new", data={**typed, "csrf_token": panel.csrf()})
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert "Ngày kết thúc đứng trước ngày bắt đầu." in page
    assert 'name="from" value="2026-12-05"' in page and 'name="to" value="2026-12-01"' in page
    assert f'value="{THO_BINH}" checked' in page and f'value="{THO_SON}" checked' not in page
    assert 'name="rule" value="slots" checked' in page
    assert f'name="slots" value="{morning}" checked' in page
    assert 'name="weekdays" value="3" checked' in page
    assert 'value="priority" selected' in page
    r = panel.client.post(
        "/plan/new",
        data={**typed, "rule": "once", "once_at": "2026-11-25T06:00", "csrf_token": panel.csrf()},
    )
    page = r.get_data(as_text=True)
    assert "Thời điểm đã qua." in page and 'value="2026-11-25T06:00"' in page
    r = panel.client.post("/plan/new", data={**typed, "communes": [], "csrf_token": panel.csrf()})
    assert "Hãy chọn ít nhất một xã." in r.get_data(as_text=True)
    assert broadcasts(loa) == 0


def test_cancelling_from_the_panel(panel: Panel, api: Api, loa: Loa) -> None:
    first = api.approved_bulletin(title="Bản tin một")
    second = api.approved_bulletin(title="Bản tin hai")
    rule = {"slots": [slot_ids(api)["05:30"]], "from": "2026-11-27", "to": "2026-11-28"}
    placed = place(api, first, rule, communes=[THO_SON])
    place(api, second, rule, communes=[THO_SON])
    panel.login("trungtam", "loa-trungtam")
    friday = cells(panel.get(f"/plan?commune={THO_SON}"))[(6, 2)]
    assert friday.index(">05:30<") < friday.index("Bản tin một") < friday.index("Bản tin hai")
    cancel = re.findall(r'action="(/plan/broadcasts/\d+/cancel)"', friday)
    assert len(cancel) == 2
    assert 'data-confirm="Hủy lượt phát này? 05:30 27/11, Xã Thọ Sơn: Bản tin một"' in friday
    page = panel.post(cancel[0], {"date": "2026-11-23", "commune": THO_SON})
    assert "Đã hủy lượt phát; các mục sau trong hàng đợi được dồn lên." in page
    friday = cells(page)[(6, 2)]
    assert 'class="cancelled"' in friday and "đã hủy" in friday
    moved_up = friday.split("Bản tin hai")[0].rsplit('class="t">', 1)[1]
    # The second now plays at the slot's start (to the second, in the machine-read time).
    assert moved_up.startswith('<time datetime="2026-11-27T05:30:00+07:00">05:30</time>')
    assert len(re.findall(r"/plan/broadcasts/\d+/cancel", friday)) == 1
    district = cells(panel.get("/plan"))[(6, 2)]  # names the commune where it was cancelled
    assert re.search(r"Bản tin một</span>.*Đã hủy ở Xã Thọ Sơn", district, re.S)
    page = panel.get("/plan/placements")
    assert "Vào Buổi sáng, từ 27/11 đến 28/11/2026" in page and "Hủy lịch" in page
    page = panel.post(f"/plan/placements/{placed['id']}/cancel", {})
    assert "Đã hủy lịch: 1 lượt chưa phát đã được hủy." in page
    assert "0 chờ phát · 0 đã phát · 2 đã hủy" in page
    assert broadcasts(loa, Broadcast.status == "scheduled") == 2  # the second bulletin's


def test_a_district_line_names_each_commune_where_it_no_longer_plays_once(app: Flask) -> None:
    """Cancelled twice in Xã B; cancelled, then placed again, in Xã A (it plays there)."""

    def item(n: int, commune: str, status: str) -> Item:
        return Item(n, ord(commune), f"Xã {commune}", 1, "Tin", "normal", status, START, START,
                    1, START, n, False, 60.0)  # fmt: skip

    found = [item(1, "A", "cancelled"), item(2, "A", "scheduled"), item(3, "B", "cancelled"),
             item(4, "B", "cancelled")]  # fmt: skip
    with app.test_request_context():
        (line,) = _district_entries(found, {})
    assert line["cancelled_in"] == "Xã B" and line["communes"] == 1


def test_an_operator_sees_only_their_commune_and_no_cancel_buttons(panel: Panel, api: Api) -> None:
    bulletin = api.approved_bulletin(title="Lịch tiếp dân")
    rule = {"slots": [slot_ids(api)["17:00"]], "from": "2026-11-27", "to": "2026-11-28"}
    place(api, bulletin, rule, communes=[THO_SON, THO_BINH])
    panel.login("thoson", "loa-thoson")
    page = panel.get(f"/plan?commune={THO_BINH}")
    assert "Lịch phát — Xã Thọ Sơn" in page and 'name="commune"' not in page
    assert "Lịch tiếp dân" in cells(page)[(6, 3)] and "Xã Thọ Bình" not in page
    assert "/cancel" not in page and "Đặt lịch phát" not in page
    ids = re.findall(r'href="/broadcasts/(\d+)"', page)
    page = panel.post(f"/plan/broadcasts/{ids[0]}/cancel", {})
    assert "Bạn không có quyền làm việc này." in page
    page = panel.get("/plan/placements")
    assert "Lịch tiếp dân" in page and "Hủy lịch" not in page
    assert "2 chờ phát" in page  # their commune's two, not the four
    assert "Bạn không có quyền làm việc này." in panel.get("/plan/new")


def test_the_bulletin_page_lists_its_placements_and_next_broadcasts(panel: Panel, api: Api) -> None:
    bulletin = api.approved_bulletin(title="Lịch tiếp dân")
    slots = slot_ids(api)
    place(
        api, bulletin, {"slots": list(slots.values()), "from": "2026-11-27", "to": "2026-11-29",
                        "weekdays": [5, 7]}, communes=[THO_SON],
    )  # fmt: skip
    place(
        api, bulletin, {"at": "2026-11-26T09:00:00+07:00", "repeat": 12, "every_seconds": 600},
        communes=[THO_BINH],
    )  # fmt: skip
    panel.login("trungtam", "loa-trungtam")
    page = panel.get(f"/bulletins/{bulletin}")
    assert "Lịch phát của bản tin" in page
    assert "Vào Buổi sáng, Buổi chiều, từ 27/11 đến 29/11/2026 (T6, CN)" in page
    assert "12 lần, cách nhau 10 phút, từ 09:00 26/11/2026" in page
    assert "Xã Thọ Sơn" in page and "4 chờ phát · 0 đã phát · 0 đã hủy" in page
    assert "12 chờ phát" in page
    assert f'href="/plan/new?bulletin={bulletin}"' in page
    # Two ways to schedule, told apart: a one-off here, the week plan for slots.
    assert "<h2>Phát ngay hoặc vào một giờ</h2>" in page and "<h2>Lên lịch phát</h2>" not in page
    assert "hoặc lặp lại: dùng “Đặt lịch phát” bên dưới." in page
    upcoming = page.split("Các lượt phát sắp tới")[1]
    assert upcoming.count("<tr><td") == 10 and "và 6 lượt phát khác" in upcoming
    assert upcoming.index("09:00 26/11/2026") < upcoming.index("09:10 26/11/2026")


def test_the_plan_speaks_english_too(panel: Panel, api: Api) -> None:
    panel.login("trungtam", "loa-trungtam")
    panel.get("/lang/en")
    page = panel.get("/plan")
    assert "Plan — Whole district" in page and "Outside slots" in page and "Thursday" in page
