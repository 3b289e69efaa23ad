from datetime import timedelta

import pytest
from sqlalchemy import func, select

from scheduler import areas, bulletins, service
from scheduler import broadcasts as bc
from scheduler.auth import Actor
from scheduler.context import Loa
from scheduler.errors import Conflict, Forbidden, InvalidInput
from scheduler.models import Broadcast, BroadcastEvent, Priority, Role, Status
from tests.conftest import ADMIN, CENTRE, REPORTER, SHORT_TEXT, THO_BINH, THO_SON

pytestmark = pytest.mark.both_databases


def make_bulletin(loa: Loa, approve: bool = True, priority: Priority = Priority.NORMAL) -> int:
    with loa.transaction() as s:
        b = bulletins.create_bulletin(
            s, CENTRE, title="Thông báo", text=SHORT_TEXT, topic="CCHC", priority=priority,
            now=loa.now(), max_chars=20000,
        )  # fmt: skip
        if approve:
            bulletins.approve(s, ADMIN, b, loa.now())
        return b.id


def count(loa: Loa, model: type) -> int:
    with loa.transaction() as s:
        n: int = s.scalar(select(func.count()).select_from(model)) or 0
        return n


def test_scheduling_makes_one_broadcast_per_commune_with_a_delivery_per_endpoint(loa: Loa) -> None:
    service.sync_virtual_speakers(loa, True)
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa thôn 2", "agent")
    bulletin_id = make_bulletin(loa)
    at = loa.now() + timedelta(minutes=5)
    made = service.schedule_bulletin(loa, CENTRE, bulletin_id, [THO_SON, THO_BINH], at)
    assert [b.commune.code for b in made] == [THO_SON, THO_BINH]
    with loa.transaction() as s:
        son = s.get(Broadcast, made[0].id)
        binh = s.get(Broadcast, made[1].id)
        assert son is not None and binh is not None
        # The agent replaced Thọ Sơn's virtual speaker; Thọ Bình keeps its virtual one.
        assert [d.endpoint.kind for d in son.deliveries] == ["agent"]
        assert [d.endpoint.kind for d in binh.deliveries] == ["virtual"]
        assert son.scheduled_at == at and son.status == Status.SCHEDULED
        assert son.audio.duration_seconds > 1


def test_scheduling_renders_the_audio_when_it_is_missing(loa: Loa) -> None:
    bulletin_id = make_bulletin(loa)
    service.schedule_bulletin(loa, CENTRE, bulletin_id, [THO_SON], loa.now())
    with loa.transaction() as s:
        audio = bulletins.get_bulletin(s, bulletin_id).audio
        assert audio is not None and audio.engine == "espeak"


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("unapproved", Conflict, "not_approved"),
        ("past", InvalidInput, "time_in_past"),
        ("unknown commune", InvalidInput, "unknown_commune"),
        ("no commune", InvalidInput, "no_communes"),
        ("twice", InvalidInput, "duplicate_commune"),
        ("reporter", Forbidden, "forbidden"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_written(
    loa: Loa, case: str, error: type[Exception], code: str
) -> None:
    bulletin_id = make_bulletin(loa, approve=case != "unapproved")
    service.render_bulletin(loa, CENTRE, bulletin_id)
    at = loa.now() + (timedelta(minutes=-10) if case == "past" else timedelta(minutes=5))
    communes = {"unknown commune": ["99999"], "no commune": [], "twice": [THO_SON, THO_SON]}.get(
        case, [THO_SON]
    )
    actor = REPORTER if case == "reporter" else CENTRE
    before = count(loa, BroadcastEvent)
    with pytest.raises(error) as raised:
        service.schedule_bulletin(loa, actor, bulletin_id, communes, at)
    assert raised.value.code == code  # type: ignore[attr-defined]
    assert count(loa, Broadcast) == 0
    assert count(loa, BroadcastEvent) == before


def test_the_same_bulletin_at_the_same_time_in_the_same_commune_is_refused(loa: Loa) -> None:
    bulletin_id = make_bulletin(loa)
    at = loa.now() + timedelta(minutes=5)
    service.schedule_bulletin(loa, CENTRE, bulletin_id, [THO_SON], at)
    with pytest.raises(Conflict):
        service.schedule_bulletin(loa, CENTRE, bulletin_id, [THO_BINH, THO_SON], at)
    assert count(loa, Broadcast) == 1


def scheduled_broadcast(loa: Loa, minutes: float = -1) -> int:
    bulletin_id = make_bulletin(loa)
    at = loa.now() + timedelta(minutes=minutes)
    if minutes < 0:  # schedule "now", then let the clock pass the scheduled time
        at = loa.now()
    (b,) = service.schedule_bulletin(loa, CENTRE, bulletin_id, [THO_SON], at)
    loa.clock.advance(max(0, -minutes) * 60 + 1)  # type: ignore[attr-defined]
    return b.id


def commune_id(loa: Loa, code: str) -> int:
    with loa.transaction() as s:
        return areas.commune_by_code(s, code).id


def test_an_operator_confirms_a_broadcast_of_their_commune(loa: Loa) -> None:
    broadcast_id = scheduled_broadcast(loa)
    op = Actor("user:thoson", Role.OPERATOR, commune_id(loa, THO_SON))
    b = service.confirm_broadcast(loa, op, broadcast_id, aired=True, reason=None, at=None)
    assert b.status == Status.PLAYED
    assert b.confirmation == "operator" and b.confirmed_by == "user:thoson"
    assert b.started_at is not None and b.finished_at is not None


def test_an_operators_word_keeps_the_time_they_give_and_a_change_is_a_new_row(
    loa: Loa,
) -> None:
    broadcast_id = scheduled_broadcast(loa)
    op = Actor("user:thoson", Role.OPERATOR, commune_id(loa, THO_SON))
    b = service.confirm_broadcast(loa, op, broadcast_id, aired=True, reason=None, at=None)
    assert b.started_at == loa.now()  # when they said it aired, not the scheduled time
    said = loa.now() - timedelta(minutes=2)
    b = service.confirm_broadcast(loa, op, broadcast_id, aired=True, reason="loa 2", at=said)
    assert b.started_at == said
    b = service.confirm_broadcast(loa, op, broadcast_id, aired=False, reason="mất điện", at=None)
    assert (b.status, b.reason) == (Status.MISSED, "mất điện")
    with loa.transaction() as s:
        rows = s.execute(
            select(BroadcastEvent.from_status, BroadcastEvent.to_status, BroadcastEvent.reason)
            .where(BroadcastEvent.broadcast_id == broadcast_id)
            .order_by(BroadcastEvent.id)
        ).all()
    assert [tuple(r) for r in rows[-3:]] == [
        ("scheduled", "played", None),
        ("played", "played", f"confirmed again: aired at {said.isoformat()}; loa 2"),
        ("played", "missed", "mất điện"),
    ]


def test_not_aired_needs_a_reason(loa: Loa) -> None:
    broadcast_id = scheduled_broadcast(loa)
    op = Actor("user:thoson", Role.OPERATOR, commune_id(loa, THO_SON))
    with pytest.raises(InvalidInput, match="why"):
        service.confirm_broadcast(loa, op, broadcast_id, aired=False, reason=" ", at=None)
    b = service.confirm_broadcast(loa, op, broadcast_id, aired=False, reason="mất điện", at=None)
    assert (b.status, b.reason) == (Status.MISSED, "mất điện")


def test_an_operator_cannot_confirm_for_another_commune(loa: Loa) -> None:
    broadcast_id = scheduled_broadcast(loa)
    other = Actor("user:thobinh", Role.OPERATOR, commune_id(loa, THO_BINH))
    with pytest.raises(Forbidden):
        service.confirm_broadcast(loa, other, broadcast_id, aired=True, reason=None, at=None)


def test_nobody_confirms_a_broadcast_as_aired_before_its_time(loa: Loa) -> None:
    broadcast_id = scheduled_broadcast(loa, minutes=30)
    with pytest.raises(InvalidInput, match="before it airs"):
        service.confirm_broadcast(loa, ADMIN, broadcast_id, aired=True, reason=None, at=None)


def test_a_cancelled_broadcast_cannot_be_confirmed_and_stays_cancelled(loa: Loa) -> None:
    broadcast_id = scheduled_broadcast(loa, minutes=10)
    service.cancel_broadcast(loa, CENTRE, broadcast_id)
    loa.clock.advance(20 * 60)  # type: ignore[attr-defined]
    op = Actor("user:thoson", Role.OPERATOR, commune_id(loa, THO_SON))
    for aired, reason in ((True, None), (False, "mất điện")):
        with pytest.raises(Conflict, match="cancelled") as refused:
            service.confirm_broadcast(loa, op, broadcast_id, aired=aired, reason=reason, at=None)
        assert refused.value.code == "cancelled_broadcast"
    with loa.transaction() as s:
        b = s.get(Broadcast, broadcast_id)
        assert b is not None and (b.status, b.confirmation) == (Status.CANCELLED, None)
        assert [e.to_status for e in b.events][-1] == Status.CANCELLED


def test_device_reports_move_the_broadcast_and_record_proof(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    broadcast_id = scheduled_broadcast(loa, minutes=1)
    with loa.transaction() as s:
        (delivery,) = s.get(Broadcast, broadcast_id).deliveries  # type: ignore[union-attr]
        delivery_id, endpoint_id, sha = (
            delivery.id,
            delivery.endpoint_id,
            delivery.broadcast.audio.sha256,
        )
    t = loa.now()
    reports = [
        bc.PlayReport(delivery_id, "delivered", t),
        bc.PlayReport(delivery_id, "started", t + timedelta(seconds=60), clock_offset_seconds=0.2),
        bc.PlayReport(delivery_id, "finished", t + timedelta(seconds=65), sha256=sha),
    ]
    assert service.record_reports(loa, endpoint_id, reports) == 3
    assert service.record_reports(loa, endpoint_id, reports) == 0  # a resent outbox changes nothing
    with loa.transaction() as s:
        b = s.get(Broadcast, broadcast_id)
        assert b is not None
        assert b.status == Status.PLAYED
        assert b.confirmation == "device" and b.confirmed_by == "endpoint:Cụm 1"
        assert b.started_at == t + timedelta(seconds=60)
        assert [e.to_status for e in b.events if e.delivery_id is None] == [
            "scheduled", "delivered", "playing", "played",
        ]  # fmt: skip


def test_an_endpoint_cannot_report_for_another_endpoints_delivery(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    other, _ = service.create_endpoint(loa, ADMIN, THO_BINH, "Cụm 1", "agent")
    broadcast_id = scheduled_broadcast(loa, minutes=1)
    with loa.transaction() as s:
        (delivery,) = s.get(Broadcast, broadcast_id).deliveries  # type: ignore[union-attr]
    with pytest.raises(Forbidden):
        service.record_reports(loa, other.id, [bc.PlayReport(delivery.id, "started", loa.now())])


def test_a_new_device_takes_over_the_planned_broadcasts_of_its_virtual_speaker(loa: Loa) -> None:
    service.sync_virtual_speakers(loa, True)
    bulletin_id = make_bulletin(loa)
    (b,) = service.schedule_bulletin(
        loa, CENTRE, bulletin_id, [THO_SON], loa.now() + timedelta(hours=1)
    )
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm loa 1", "agent")
    with loa.transaction() as s:
        broadcast = s.get(Broadcast, b.id)
        assert broadcast is not None
        assert [(d.endpoint.kind, d.status) for d in broadcast.deliveries] == [
            ("virtual", "cancelled"),
            ("agent", "scheduled"),
        ]
        assert broadcast.status == Status.SCHEDULED
