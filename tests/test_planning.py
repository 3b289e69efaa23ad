"""A district's week: slots, groups, placements, queues with overflow, cancel, the plan.

The clock stands at Thursday 2026-11-26 08:00 in Triệu Sơn (START)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from scheduler import planning, service
from scheduler.context import Loa
from scheduler.models import Broadcast, Placement, Slot
from tests.conftest import ADMIN, THO_BINH, THO_SON, THO_TIEN, Api
from web.api.endpoints import schedule_documents

pytestmark = pytest.mark.both_databases

LONG = "Thông báo về cải cách hành chính của xã. " * 20  # about 35 s of speech
WEEK = {"from": "2026-11-27", "to": "2026-12-03"}  # Friday to Thursday


def slots(api: Api) -> dict[str, int]:
    return {s["start"]: s["id"] for s in api.get("/slots").json}


def place(api: Api, bulletin_id: int, rule: dict[str, Any], **targets: Any) -> Any:
    r = api.post("/placements", {"bulletin_id": bulletin_id, "rule": rule, **targets})
    assert r.status_code == 201, r.json
    return r.json


def plan(api: Api, commune: str, day: str) -> list[dict[str, Any]]:
    r = api.get(f"/plan?from={day}&to={day}&commune={commune}")
    assert r.status_code == 200, r.json
    rows: list[dict[str, Any]] = r.json
    return rows


def count(loa: Loa, model: type, *where: Any) -> int:
    with loa.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_new_district_has_a_morning_and_an_afternoon_slot(api: Api) -> None:
    assert [
        (s["name"], s["start"], s["minutes"], s["communes"]) for s in api.get("/slots").json
    ] == [
        ("Buổi sáng", "05:30", 60, "all"),
        ("Buổi chiều", "17:00", 60, "all"),
    ]


def test_the_cchc_segment_placed_in_both_daily_slots_for_a_week_in_every_commune(
    api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    answer = place(api, bulletin, {"slots": list(slots(api).values()), **WEEK}, communes="all")
    assert answer["broadcasts"] == 34 * 2 * 7 and answer["overflow"] == 0
    friday = plan(api, THO_SON, "2026-11-27")
    assert [(row["scheduled_at"], row["position"], row["overflow"]) for row in friday] == [
        ("2026-11-27T05:30:00+07:00", 1, False),
        ("2026-11-27T17:00:00+07:00", 1, False),
    ]
    service.extend_plan(loa)  # the scheduler's daily run makes nothing twice
    assert count(loa, Broadcast) == 34 * 2 * 7


def test_a_queue_plays_by_priority_back_to_back_and_what_does_not_fit_moves_on(
    api: Api,
) -> None:
    short = api.post("/slots", {"name": "Trưa", "start": "11:00", "minutes": 1}).json["id"]
    rule = {"slots": [short], "from": "2026-11-27", "to": "2026-11-28"}
    first = api.approved_bulletin(LONG)
    second = api.approved_bulletin(LONG + " Hết.")
    urgent = api.approved_bulletin("Lịch tiêm chủng cho trẻ em tuần này.", priority="priority")
    lengths = [api.get(f"/bulletins/{b}").json["audio"] for b in (first, second, urgent)]
    assert all(a is None for a in lengths)  # rendered when placed
    place(api, first, rule, communes=[THO_SON])
    answer = place(api, second, rule, communes=[THO_SON])
    assert answer["overflow"] == 2  # Friday's and Saturday's do not fit after the first
    place(api, urgent, rule, communes=[THO_SON])
    seconds = {
        b: api.get(f"/bulletins/{b}").json["audio"]["duration_seconds"]
        for b in (first, second, urgent)
    }
    assert 30 < seconds[first] < 59 and seconds[first] + seconds[second] > 60
    friday = plan(api, THO_SON, "2026-11-27")
    assert [(r["bulletin_id"], r["slot"], r["position"], r["overflow"]) for r in friday] == [
        (urgent, "Trưa", 1, False),
        (first, "Trưa", 2, False),
        (second, "Buổi chiều", 1, True),  # moved on to the next slot: never cut or dropped
    ]
    start = datetime.fromisoformat(friday[0]["scheduled_at"])
    assert start == datetime(2026, 11, 27, 4, 0, tzinfo=UTC)  # 11:00 local
    after = datetime.fromisoformat(friday[1]["scheduled_at"]) - start
    assert timedelta(seconds=seconds[urgent]) < after < timedelta(seconds=seconds[urgent] + 2)
    assert friday[2]["scheduled_at"] == "2026-11-27T17:00:00+07:00"


def test_cancelling_one_communes_tuesday_item_leaves_the_rest_of_the_week(
    api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    morning = slots(api)["05:30"]
    place(api, bulletin, {"slots": [morning], **WEEK}, communes=[THO_SON, THO_BINH])
    (tuesday,) = plan(api, THO_SON, "2026-12-01")
    r = api.post(f"/broadcasts/{tuesday['id']}/cancel")
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    assert [row["status"] for row in plan(api, THO_SON, "2026-12-01")] == ["cancelled"]
    assert [row["status"] for row in plan(api, THO_BINH, "2026-12-01")] == ["scheduled"]
    assert api.post(f"/broadcasts/{tuesday['id']}/cancel").status_code == 409
    assert count(loa, Broadcast, Broadcast.status == "scheduled") == 13


def test_deleting_a_placement_cancels_its_future_broadcasts_and_keeps_history(
    api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    rule = {
        "at": (loa.now() + timedelta(minutes=5)).isoformat(),
        "repeat": 3,
        "every_seconds": 3600,
    }
    answer = place(api, bulletin, rule, communes=[THO_SON, THO_TIEN])
    assert answer["broadcasts"] == 6
    (first,) = [r for r in plan(api, THO_SON, "2026-11-26") if r["placement_id"] == answer["id"]][
        :1
    ]
    loa.clock.advance(6 * 60)  # type: ignore[attr-defined]
    confirmed = api.post(f"/broadcasts/{first['id']}/confirm", {"aired": True})
    assert confirmed.status_code == 200
    r = api.call("DELETE", f"/placements/{answer['id']}")
    assert r.status_code == 200 and r.json == {"cancelled": 4}
    statuses = sorted(row["status"] for row in plan(api, THO_SON, "2026-11-26"))
    assert statuses == ["cancelled", "cancelled", "played"]
    assert api.get(f"/placements/{answer['id']}").json["cancelled_at"] is not None


def test_a_placement_for_a_group_reaches_its_communes_only(api: Api) -> None:
    r = api.post("/groups", {"name": "Vùng lúa", "communes": [THO_SON, THO_TIEN]})
    assert r.status_code == 201 and r.json["communes"] == [THO_SON, THO_TIEN]
    bulletin = api.approved_bulletin()
    answer = place(api, bulletin, {"once": "2026-11-26T18:00:00+07:00"}, group="Vùng lúa")
    assert answer["broadcasts"] == 2
    assert plan(api, THO_BINH, "2026-11-26") == []


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/slots", {"name": "Đêm", "start": "23:30", "minutes": 60}, "slot_past_midnight"),
        ("/slots", {"name": " buổi SÁNG ", "start": "06:30", "minutes": 30}, "duplicate_slot"),
        ("/slots", {"name": "X", "start": "25:00", "minutes": 10}, "invalid_time"),
        ("/slots", {"name": "X", "start": "06:00", "minutes": 10, "weekdays": [0]}, "invalid_days"),
        ("/slots", {"name": "X", "start": "06:00", "minutes": 10, "communes": ["99999"]},
         "unknown_commune"),
        ("/groups", {"name": "G", "communes": [THO_SON, "00000"]}, "unknown_commune"),
        ("/placements", {"rule": {"at": "2026-11-26T18:00:00+07:00", "repeat": 0,
                                   "every_seconds": 60}, "communes": "all"}, "invalid_body"),
        ("/placements", {"rule": {"slots": [1], "from": "2026-12-03", "to": "2026-11-27"},
                         "communes": "all"}, "invalid_range"),
        ("/placements", {"rule": {"once": "2026-11-26T18:00:00+07:00"}, "group": "Không có"},
         "unknown_group"),
        ("/placements", {"rule": {"once": "2026-11-26T18:00:00+07:00"}, "communes": ["1"]},
         "unknown_commune"),
        ("/placements", {"rule": {"once": "2026-11-25T18:00:00+07:00"}, "communes": "all"},
         "time_in_past"),
        ("/placements", {"rule": {"slots": [999], **WEEK}, "communes": "all"}, "unknown_slot"),
        ("/placements", {"rule": {"once": "2026-11-26T18:00:00+07:00"}}, "no_communes"),
        ("/placements", {"rule": {"slots": [1], "from": "2026-11-01", "to": "2026-11-10"},
                         "communes": "all"}, "range_in_past"),
        ("/placements", {"rule": {"slots": [1], "from": "2026-12-01", "to": "2036-12-01"},
                         "communes": "all"}, "range_too_long"),
    ],
)  # fmt: skip
def test_bad_plans_are_refused_with_the_reason_and_nothing_is_written(
    api: Api, loa: Loa, path: str, body: dict[str, Any], code: str
) -> None:
    if path == "/placements":
        body = {"bulletin_id": api.approved_bulletin(), **body}
    before = count(loa, Slot), count(loa, Placement), count(loa, Broadcast)
    r = api.post(path, body)
    assert 400 <= r.status_code < 500 and r.json["error"] == code, r.json
    assert (count(loa, Slot), count(loa, Placement), count(loa, Broadcast)) == before


def test_a_placement_that_can_never_fit_its_slots_is_refused(api: Api) -> None:
    tiny = api.post("/slots", {"name": "Ngắn", "start": "12:00", "minutes": 1}).json["id"]
    bulletin = api.approved_bulletin(LONG * 2)
    r = api.post(
        "/placements",
        {"bulletin_id": bulletin, "rule": {"slots": [tiny], **WEEK}, "communes": "all"},
    )
    assert r.status_code == 422 and r.json["error"] == "never_fits"


def test_a_draft_bulletin_cannot_be_placed(api: Api) -> None:
    draft = api.post("/bulletins", {"title": "Nháp", "text": "Nội dung."}).json["id"]
    r = api.post(
        "/placements",
        {"bulletin_id": draft, "rule": {"once": "2026-11-26T18:00:00+07:00"}, "communes": "all"},
    )
    assert r.status_code == 409 and r.json["error"] == "not_approved"


def test_an_operator_sees_the_plan_of_their_own_commune(api: Api, api_for: Any) -> None:
    bulletin = api.approved_bulletin()
    place(api, bulletin, {"once": "2026-11-26T18:00:00+07:00"}, communes=[THO_SON, THO_BINH])
    operator = api_for("operator", THO_SON)
    rows = operator.get("/plan?from=2026-11-26").json
    assert {r["commune"] for r in rows} == {THO_SON}
    assert operator.get(f"/plan?from=2026-11-26&commune={THO_BINH}").status_code == 403
    assert (
        operator.post(
            "/placements",
            {
                "bulletin_id": bulletin,
                "rule": {"once": "2026-11-26T19:00:00+07:00"},
                "communes": "all",
            },
        ).status_code
        == 403
    )


def test_an_agent_drops_a_cancelled_item_at_once(api: Api, loa: Loa) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    bulletin = api.approved_bulletin()
    place(api, bulletin, {"once": "2026-11-26T09:00:00+07:00"}, communes=[THO_SON])
    before = loa.notifier.version(endpoint.id)
    (row,) = plan(api, THO_SON, "2026-11-26")
    api.post(f"/broadcasts/{row['id']}/cancel")
    assert loa.notifier.version(endpoint.id) != before  # its long-poll answers now
    docs = schedule_documents(loa, [endpoint.id], "")
    assert [i["status"] for i in docs[endpoint.id]["items"]] in ([], ["cancelled"])


def test_materialising_twice_makes_nothing_twice(loa: Loa, api: Api) -> None:
    bulletin = api.approved_bulletin()
    place(api, bulletin, {"slots": list(slots(api).values()), **WEEK}, communes="all")
    with loa.transaction() as s:
        again = planning.materialise(
            s, loa.now(), loa.now() + timedelta(days=14), loa.settings.timezone
        )
    assert again.created == [] and again.moved == []


def test_a_placed_bulletin_edited_back_to_draft_holds_only_its_own_placement(
    api: Api, loa: Loa
) -> None:
    edited, other = api.approved_bulletin(), api.approved_bulletin("Lịch tiêm chủng.")
    month = {"slots": [slots(api)["05:30"]], "from": "2026-11-27", "to": "2026-12-31"}
    for bulletin in (edited, other):
        place(api, bulletin, month, communes=[THO_SON])
    r = api.call("PATCH", f"/bulletins/{edited}", {"text": "Nội dung đã sửa."})
    assert r.status_code == 200 and r.json["status"] == "draft"
    loa.clock.advance(3 * 86400)  # type: ignore[attr-defined]
    made = service.extend_plan(loa)  # the scheduler's hourly run: must not stop here
    assert made.created and count(loa, Broadcast, Broadcast.bulletin_id == edited) == 14
    assert count(loa, Broadcast, Broadcast.bulletin_id == other) == 17


def test_a_corrected_bulletin_approved_again_airs_its_new_audio(api: Api, loa: Loa) -> None:
    bulletin = api.approved_bulletin()
    place(api, bulletin, {"slots": [slots(api)["17:00"]], **WEEK}, communes=[THO_SON])
    old = api.get(f"/bulletins/{bulletin}").json["audio"]["sha256"]
    api.call("PATCH", f"/bulletins/{bulletin}", {"text": "Lịch tiếp dân đổi sang thứ Sáu."})
    assert api.post(f"/bulletins/{bulletin}/approve").status_code == 200
    new = api.post(f"/bulletins/{bulletin}/audio").json["sha256"]
    assert new != old
    shas = {
        api.get(f"/broadcasts/{row['id']}").json["audio_sha256"]
        for row in plan(api, THO_SON, "2026-11-28")
    }
    assert shas == {new}


def test_the_same_bulletin_placed_again_in_the_same_slot_is_refused(api: Api) -> None:
    bulletin = api.approved_bulletin()
    morning = slots(api)["05:30"]
    place(api, bulletin, {"slots": [morning], **WEEK}, communes=[THO_SON, THO_BINH])
    again = {"slots": [morning], "from": "2026-12-01", "to": "2026-12-05"}
    r = api.post("/placements", {"bulletin_id": bulletin, "rule": again, "communes": "all"})
    assert r.status_code == 409 and r.json["error"] == "duplicate_placement"
    elsewhere = {"bulletin_id": bulletin, "rule": again, "communes": [THO_TIEN]}
    assert api.post("/placements", elsewhere).status_code == 201


def test_a_month_says_how_far_it_is_planned_and_the_rest_follows_day_by_day(
    api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    month = {"slots": [slots(api)["05:30"]], "from": "2026-12-01", "to": "2026-12-31"}
    answer = place(api, bulletin, month, communes=[THO_SON])
    assert answer["planned_until"] == "2026-12-10"  # 14 days from 26/11
    assert answer["broadcasts"] == 10
    loa.clock.advance(5 * 86400)  # type: ignore[attr-defined]
    service.extend_plan(loa)
    assert count(loa, Broadcast) == 15


def test_a_mistaken_slot_is_retired_once_nothing_is_planned_in_it(api: Api) -> None:
    wrong = api.post("/slots", {"name": "Chồng", "start": "06:00", "minutes": 30}).json["id"]
    bulletin = api.approved_bulletin()
    rule = {"slots": [wrong], "from": "2026-11-28", "to": "2026-11-29"}
    placed = place(api, bulletin, rule, communes=[THO_SON])
    r = api.call("DELETE", f"/slots/{wrong}")
    assert r.status_code == 409 and r.json["error"] == "slot_in_use"
    api.call("DELETE", f"/placements/{placed['id']}")
    assert api.call("DELETE", f"/slots/{wrong}").status_code == 200
    assert wrong not in slots(api).values()
    assert api.call("DELETE", f"/slots/{wrong}").status_code == 404


def test_a_placement_changed_in_place_rewrites_only_its_future(api: Api, loa: Loa) -> None:
    bulletin = api.approved_bulletin()
    morning, evening = slots(api)["05:30"], slots(api)["17:00"]
    rule = {"slots": [morning], "from": "2026-11-26", "to": "2026-11-28"}
    answer = place(api, bulletin, rule, communes=[THO_SON, THO_BINH])
    assert answer["broadcasts"] == 4  # Friday and Saturday mornings: Thursday's has passed
    loa.clock.advance(86400)  # type: ignore[attr-defined]  # Friday 08:00: Friday's aired
    (friday,) = plan(api, THO_SON, "2026-11-27")
    assert api.post(f"/broadcasts/{friday['id']}/confirm", {"aired": True}).status_code == 200
    # From now on: Thọ Sơn only, mornings and evenings until Sunday, as a priority item.
    new_rule = {"slots": [morning, evening], "from": "2026-11-26", "to": "2026-11-29"}
    r = api.call(
        "PUT",
        f"/placements/{answer['id']}",
        {"rule": new_rule, "communes": [THO_SON], "priority": "priority"},
    )
    assert r.status_code == 200, r.json
    assert r.json["broadcasts"] == 4  # Fri + Sat + Sun evenings, Sun morning
    assert [row["status"] for row in plan(api, THO_SON, "2026-11-27")] == ["played", "scheduled"]
    assert [row["status"] for row in plan(api, THO_BINH, "2026-11-28")] == ["cancelled"]
    saturday = plan(api, THO_SON, "2026-11-28")
    assert [(row["status"], row["priority"]) for row in saturday] == [
        ("scheduled", "priority"),
        ("scheduled", "priority"),
    ]
    assert api.get(f"/placements/{answer['id']}").json["rule"]["to"] == "2026-11-29"


def test_a_bad_change_to_a_placement_is_refused_and_nothing_moves(api: Api) -> None:
    bulletin = api.approved_bulletin()
    rule = {"slots": [slots(api)["05:30"]], **WEEK}
    answer = place(api, bulletin, rule, communes=[THO_SON])
    before = plan(api, THO_SON, "2026-11-28")
    bad = {"slots": [999_999], **WEEK}
    r = api.call("PUT", f"/placements/{answer['id']}", {"rule": bad, "communes": [THO_SON]})
    assert r.status_code == 404 and r.json["error"] == "unknown_slot"
    assert plan(api, THO_SON, "2026-11-28") == before
    other = api.approved_bulletin("Thông báo khác.")
    r = api.call(
        "PUT",
        f"/placements/{answer['id']}",
        {"bulletin_id": other, "rule": rule, "communes": [THO_SON]},
    )
    assert r.status_code == 422 and r.json["error"] == "bulletin_fixed"
