"""Operator confirmation, escalation, readiness and endpoint alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from scheduler import broadcasts as bc
from scheduler import service, watch
from scheduler.areas import commune_by_code
from scheduler.auth import Actor
from scheduler.clock import ManualClock
from scheduler.context import Loa
from scheduler.demo import DEMO_OPERATOR_COMMUNE, seed_operator_task
from scheduler.dispatch import close, fire
from scheduler.models import Broadcast, Role, Status
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON, THO_TIEN, Api, new_token
from tests.test_dispatch import broadcast
from tests.test_health import poll
from tests.test_panel import Panel
from tests.test_scheduling import make_bulletin

pytestmark = pytest.mark.both_databases

CONFIRM_AFTER = timedelta(minutes=30)
ESCALATE_AFTER = timedelta(hours=4)


def operator(loa: Loa, code: str) -> Actor:
    with loa.transaction() as s:
        return Actor(f"user:op-{code}", Role.OPERATOR, commune_by_code(s, code).id)


def waiting(loa: Loa, actor: Actor) -> list[tuple[int, bool]]:
    with loa.transaction() as s:
        found = watch.waiting_for_operator(s, actor, loa.now(), CONFIRM_AFTER, ESCALATE_AFTER)
        return [(w.broadcast.id, w.escalated) for w in found]


def test_a_manual_endpoint_asks_its_operator_at_once_and_the_answer_is_its_proof(
    loa: Loa, clock: ManualClock
) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Đài xã", "manual")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    fire(loa, b.id)
    clock.advance(60)
    assert waiting(loa, operator(loa, THO_SON)) == [(b.id, False)]
    assert waiting(loa, operator(loa, THO_BINH)) == []
    clock.advance(3600)
    close(loa, b.id)  # the close job leaves the operator's endpoint open
    assert broadcast(loa, b.id).deliveries[0].status == Status.SCHEDULED
    service.confirm_broadcast(loa, operator(loa, THO_SON), b.id, True, None, None)
    after = broadcast(loa, b.id)
    assert after.status == Status.PLAYED and after.confirmation == "operator"
    assert after.deliveries[0].status == Status.PLAYED
    assert waiting(loa, operator(loa, THO_SON)) == []


def test_a_device_without_proof_asks_the_operator_later_then_escalates(
    loa: Loa, clock: ManualClock
) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    fire(loa, b.id)
    clock.advance(CONFIRM_AFTER.total_seconds() - 60)
    assert waiting(loa, CENTRE) == []
    clock.advance(120)
    close(loa, b.id)
    assert broadcast(loa, b.id).status == Status.MISSED
    assert waiting(loa, CENTRE) == [(b.id, False)]
    clock.advance(ESCALATE_AFTER.total_seconds())
    assert waiting(loa, CENTRE) == [(b.id, True)]
    service.confirm_broadcast(loa, CENTRE, b.id, False, "Mất điện cả buổi sáng", None)
    assert waiting(loa, CENTRE) == []


def test_readiness_counts_the_communes_whose_endpoints_hold_the_audio(
    loa: Loa, clock: ManualClock
) -> None:
    _, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    service.create_endpoint(loa, ADMIN, THO_BINH, "Cụm 1", "agent")
    service.create_endpoint(loa, ADMIN, THO_TIEN, "Đài xã", "manual")
    at = loa.now() + timedelta(hours=20)
    made = service.schedule_bulletin(
        loa, CENTRE, make_bulletin(loa), [THO_SON, THO_BINH, THO_TIEN], at
    )
    tho_son = next(b for b in made if b.commune.code == THO_SON)
    endpoint = tho_son.deliveries[0].endpoint
    with loa.transaction() as s:
        report = bc.PlayReport(tho_son.deliveries[0].id, "delivered", loa.now())
        bc.record_report(s, s.merge(endpoint), report, loa.now())
    with loa.transaction() as s:
        (ready,) = watch.readiness(s, loa.now(), timedelta(hours=36))
        assert ready.at == at
        assert sorted(a.code for a in ready.ready) == [THO_SON, THO_TIEN]
        assert [a.code for a in ready.not_ready] == [THO_BINH]
    assert token


def test_an_endpoint_that_went_down_is_an_alert_until_it_is_back(
    loa: Loa, clock: ManualClock, client: FlaskClient
) -> None:
    e, token = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    api = Api(client, new_token(loa, "centre"))
    poll(api, token)
    service.sweep_health(loa)
    clock.advance(loa.settings.endpoint_down_seconds + 1)
    service.sweep_health(loa)
    with loa.transaction() as s:
        (alert,) = watch.endpoint_alerts(s, CENTRE, loa.now(), timedelta(hours=24))
        assert alert.endpoint.id == e.id and alert.to_state == "down"
    poll(api, token)
    service.sweep_health(loa)
    with loa.transaction() as s:
        assert watch.endpoint_alerts(s, CENTRE, loa.now(), timedelta(hours=24)) == []


def test_the_demo_operator_of_tho_son_finds_a_broadcast_waiting_in_the_panel(
    loa: Loa, client: FlaskClient, clock: ManualClock
) -> None:
    seed_operator_task(loa)
    clock.advance(5)
    with loa.transaction() as s:
        (b,) = s.scalars(select(Broadcast)).all()
        assert b.commune.code == DEMO_OPERATOR_COMMUNE
    fire(loa, b.id)
    panel = Panel(client)
    page = panel.login("thoson", "loa-thoson")
    assert "Chờ xác nhận đã phát / không phát" in page
    assert 'name="aired" value="yes"' in page and "Tuyên truyền cải cách hành chính" in page
    page = panel.post(f"/broadcasts/{b.id}/confirm", {"aired": "yes", "reason": ""})
    assert "Chờ xác nhận đã phát / không phát" not in page
    assert broadcast(loa, b.id).status == Status.PLAYED


def test_the_centre_dashboard_shows_readiness_and_endpoint_alerts(
    loa: Loa, client: FlaskClient, clock: ManualClock
) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    at = loa.now() + timedelta(hours=20)
    service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], at)
    service.sweep_health(loa)
    panel = Panel(client)
    page = panel.login("trungtam", "loa-trungtam")
    assert "Sẵn sàng phát" in page and "0/1" in page and "Thọ Sơn" in page
    assert "Cảnh báo" not in page  # it never came up: nothing went quiet
