"""Endpoint health: heartbeats cost no write per poll; up / late / down moves are rows."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from scheduler import service
from scheduler.clock import ManualClock
from scheduler.context import Loa
from scheduler.models import Endpoint, EndpointEvent
from tests.conftest import ADMIN, THO_BINH, THO_SON, Api
from tests.test_dispatch import with_virtual_speakers

pytestmark = pytest.mark.both_databases


def poll(api: Api, token: str, **heartbeat: str) -> None:
    r = api.client.get(
        "/api/v1/agent/schedule",
        query_string=heartbeat,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.json


def endpoint(loa: Loa, endpoint_id: int) -> Endpoint:
    with loa.transaction() as s:
        e = s.get(Endpoint, endpoint_id)
        assert e is not None
        return e


def transitions(loa: Loa, endpoint_id: int) -> list[tuple[str | None, str]]:
    with loa.transaction() as s:
        rows = s.scalars(
            select(EndpointEvent)
            .where(EndpointEvent.endpoint_id == endpoint_id)
            .order_by(EndpointEvent.id)
        )
        return [(e.from_state, e.to_state) for e in rows]


def test_a_poll_writes_nothing_until_the_sweep_writes_all_beats_together(
    loa: Loa, api: Api
) -> None:
    e, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    poll(api, token, agent_version="loa-agent/0.1.0", cache_free_bytes="5000000",
         clock_offset_seconds="-0.25")  # fmt: skip
    assert endpoint(loa, e.id).last_seen_at is None
    service.sweep_health(loa)
    seen = endpoint(loa, e.id)
    assert seen.last_seen_at == loa.now() and seen.state == "up"
    assert seen.agent_version == "loa-agent/0.1.0"
    assert seen.cache_free_bytes == 5_000_000 and seen.clock_offset_seconds == -0.25
    assert transitions(loa, e.id) == [("down", "up")]


def test_an_endpoint_goes_late_then_down_and_back_up_with_one_row_per_move(
    loa: Loa, api: Api, clock: ManualClock
) -> None:
    e, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    poll(api, token)
    service.sweep_health(loa)
    clock.advance(loa.settings.endpoint_late_seconds + 1)
    service.sweep_health(loa)
    service.sweep_health(loa)  # nothing new to record
    assert endpoint(loa, e.id).state == "late"
    clock.advance(loa.settings.endpoint_down_seconds)
    service.sweep_health(loa)
    assert endpoint(loa, e.id).state == "down"
    poll(api, token)
    service.sweep_health(loa)
    assert transitions(loa, e.id) == [
        ("down", "up"),
        ("up", "late"),
        ("late", "down"),
        ("down", "up"),
    ]


def test_a_report_is_a_heartbeat_too(loa: Loa, api: Api) -> None:
    e, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    r = api.client.post(
        "/api/v1/agent/reports",
        json={"reports": []},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    service.sweep_health(loa)
    assert endpoint(loa, e.id).state == "up"


def test_a_malformed_heartbeat_gets_a_clear_error(loa: Loa, api: Api) -> None:
    _, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    r = api.client.get(
        "/api/v1/agent/schedule",
        query_string={"cache_free_bytes": "lots"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 422 and r.json["error"] == "invalid_heartbeat"


def test_the_dispatching_process_vouches_for_the_speakers_it_drives(loa: Loa) -> None:
    with_virtual_speakers(loa)
    service.sweep_health(loa)
    with loa.transaction() as s:
        states = set(s.scalars(select(Endpoint.state).where(Endpoint.kind == "virtual")))
        events = s.scalar(select(func.count()).select_from(EndpointEvent))
    assert states == {"up"} and events == 34


def test_the_api_lists_each_endpoints_state_and_what_it_said(loa: Loa, api: Api) -> None:
    e, token = service.create_endpoint(loa, ADMIN, THO_BINH, "Cụm 1", "agent")
    poll(api, token, agent_version="loa-agent/0.1.0", clock_offset_seconds="1.5",
         missing_audio="2", cache_error="disk_full")  # fmt: skip
    service.sweep_health(loa)
    (row,) = [r for r in api.get("/endpoints").json if r["id"] == e.id]
    assert row["missing_audio"] == 2 and row["cache_error"] == "disk_full"
    assert row["state"] == "up" and row["commune"] == THO_BINH
    assert row["agent_version"] == "loa-agent/0.1.0" and row["clock_offset_seconds"] == 1.5
    poll(api, token, agent_version="loa-agent/0.1.0")  # the disk has room again
    service.sweep_health(loa)
    (row,) = [r for r in api.get("/endpoints").json if r["id"] == e.id]
    assert row["cache_error"] is None and row["missing_audio"] is None
    assert row["last_seen"].endswith("+07:00") and row["virtual"] is False


def test_an_endpoints_password_is_never_shown(loa: Loa, api: Api) -> None:
    address = "icecast://source:s3cret@127.0.0.1:8000/thoson.mp3"
    service.create_endpoint(loa, ADMIN, THO_SON, "Đài xã", "icecast", address)
    (row,) = [r for r in api.get("/endpoints").json if r["kind"] == "icecast"]
    assert row["address"] == "icecast://source:***@127.0.0.1:8000/thoson.mp3"
