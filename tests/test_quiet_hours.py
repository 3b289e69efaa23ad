"""Quiet hours (giờ yên tĩnh): at night a commune airs nothing but emergencies.

The clock stands at Thursday 2026-11-26 08:00 in Triệu Sơn."""

from typing import Any

import pytest
from sqlalchemy import select

from scheduler.context import Loa
from scheduler.models import Broadcast, BroadcastEvent
from tests.conftest import THO_BINH, THO_SON, Api

pytestmark = pytest.mark.both_databases

NIGHT = {"start": "21:30", "end": "05:00"}


def quiet(api: Api, **body: Any) -> Any:
    r = api.call("PUT", "/quiet-hours", {**NIGHT, **body})
    assert r.status_code == 200, r.json
    return r.json


def broadcast(api: Api, bulletin_id: int, at: str, communes: list[str]) -> Any:
    return api.post("/broadcasts", {"bulletin_id": bulletin_id, "communes": communes, "at": at})


def test_a_normal_bulletin_at_night_is_refused_where_quiet_hours_hold_it(api: Api) -> None:
    assert quiet(api, communes=[THO_SON]) == {"communes": 1, "cancelled": 0}
    bulletin = api.approved_bulletin()
    r = broadcast(api, bulletin, "2026-11-26T22:15:00+07:00", [THO_SON, THO_BINH])
    assert r.status_code == 409 and r.json["error"] == "quiet_hours", r.json
    assert "Thọ Sơn (21:30-05:00)" in r.json["detail"]
    assert api.get("/broadcasts").json == []  # nothing half-written: not even Thọ Bình
    assert broadcast(api, bulletin, "2026-11-26T22:15:00+07:00", [THO_BINH]).status_code == 201
    assert broadcast(api, bulletin, "2026-11-27T05:00:00+07:00", [THO_SON]).status_code == 201


def test_an_emergency_airs_in_quiet_hours(api: Api) -> None:
    quiet(api)
    urgent = api.approved_bulletin("Lũ đang lên, sơ tán ngay.", priority="emergency")
    r = broadcast(api, urgent, "2026-11-26T23:00:00+07:00", [THO_SON])
    assert r.status_code == 201, r.json


def test_setting_quiet_hours_cancels_what_was_planned_in_them_with_the_reason(
    api: Api, loa: Loa
) -> None:
    bulletin = api.approved_bulletin()
    urgent = api.approved_bulletin("Bão số 9 đổ bộ, sơ tán ngay.", priority="emergency")
    night = broadcast(api, bulletin, "2026-11-26T22:00:00+07:00", [THO_SON]).json[0]["id"]
    evening = broadcast(api, bulletin, "2026-11-26T20:00:00+07:00", [THO_SON]).json[0]["id"]
    alarm = broadcast(api, urgent, "2026-11-26T22:30:00+07:00", [THO_SON]).json[0]["id"]
    assert quiet(api) == {"communes": 34, "cancelled": 1}
    status = {b["id"]: b["status"] for b in api.get("/broadcasts").json}
    assert status == {night: "cancelled", evening: "scheduled", alarm: "scheduled"}
    with loa.transaction() as session:
        reasons = session.scalars(
            select(BroadcastEvent.reason).where(
                BroadcastEvent.broadcast_id == night, BroadcastEvent.to_status == "cancelled"
            )
        ).all()
    assert reasons == ["in the quiet hours 21:30-05:00"]
    communes = {c["code"]: c["quiet_hours"] for c in api.get("/communes").json}
    assert communes[THO_SON] == NIGHT
    assert quiet(api, start=None, end=None)["cancelled"] == 0
    assert api.get("/communes").json[0]["quiet_hours"] is None


def test_slots_placed_in_quiet_hours_leave_those_communes_out_and_say_so(
    api: Api, loa: Loa
) -> None:
    quiet(api, communes=[THO_SON], start="04:00", end="06:00")
    morning = next(s["id"] for s in api.get("/slots").json if s["start"] == "05:30")
    bulletin = api.approved_bulletin()
    rule = {"slots": [morning], "from": "2026-11-27", "to": "2026-11-28"}
    r = api.post(
        "/placements", {"bulletin_id": bulletin, "rule": rule, "communes": [THO_SON, THO_BINH]}
    )
    assert r.status_code == 201, r.json
    assert (r.json["broadcasts"], r.json["quiet"]) == (2, 2)
    with loa.transaction() as session:
        communes = {b.commune.code for b in session.scalars(select(Broadcast))}
    assert communes == {THO_BINH}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"start": "25:00"}, "invalid_time"),
        ({"end": None}, "invalid_time"),
        ({"start": "22:00", "end": "22:00"}, "invalid_time"),
        ({"communes": ["99999"]}, "unknown_commune"),
    ],
)
def test_bad_quiet_hours_are_refused_and_nothing_changes(
    api: Api, body: dict[str, Any], error: str
) -> None:
    r = api.call("PUT", "/quiet-hours", {**NIGHT, **body})
    assert r.status_code in (404, 422) and r.json["error"] == error, r.json
    assert all(c["quiet_hours"] is None for c in api.get("/communes").json)
