"""Dispatcher defects found by trying the product (issue 7), each reproduced before its fix."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from scheduler import broadcasts as bc
from scheduler import service
from scheduler.clock import ManualClock
from scheduler.context import Loa, build_loa
from scheduler.dispatch import Dispatcher, close, dispatch, fire, fire_due, retry_due
from scheduler.drivers.base import Driver, DriverError, PlayItem
from scheduler.models import BroadcastEvent, DeliveryAttempt, Endpoint, Status
from scheduler.settings import Settings
from scheduler.status import move_delivery
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON
from tests.test_dispatch import broadcast, with_virtual_speakers
from tests.test_scheduling import make_bulletin

pytestmark = pytest.mark.both_databases


class Scripted(Driver):
    """A driver whose start answers from a script: an exception to raise, or None."""

    kind = "agent"

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.started: list[int] = []

    def start(self, item: PlayItem) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        self.started.append(item.delivery_id)


def test_a_status_move_made_from_a_stale_read_writes_nothing(
    settings: Settings, clock: ManualClock
) -> None:
    first, second = build_loa(settings, clock), build_loa(settings, clock)
    service.create_endpoint(first, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(first, CENTRE, make_bulletin(first), [THO_SON], None)
    clock.advance(600)
    with first.transaction() as s:
        stale = broadcast(first, b.id).deliveries[0]
        stale = s.merge(stale, load=False)
        close(second, b.id)  # another scheduler closes it meanwhile
        assert not move_delivery(s, stale, Status.MISSED, first.now(), "dispatcher", "late")
    with first.transaction() as s:
        missed = s.scalar(
            select(func.count()).where(
                BroadcastEvent.broadcast_id == b.id, BroadcastEvent.to_status == Status.MISSED
            )
        )
    assert missed == 2  # once for the delivery, once for the broadcast
    first.close()
    second.close()


def test_a_start_reported_before_the_dispatcher_fires_still_dispatches_the_rest(
    loa: Loa,
) -> None:
    first, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 2", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    early = broadcast(loa, b.id).deliveries[0]
    service.record_reports(loa, first.id, [bc.PlayReport(early.id, "started", loa.now())])
    assert broadcast(loa, b.id).status == Status.PLAYING
    fire(loa, b.id)
    after = broadcast(loa, b.id)
    assert after.dispatched_at is not None
    assert [len(d.attempts) for d in after.deliveries] == [0, 1]  # the other cluster started


def test_a_restarted_dispatcher_closes_a_broadcast_playing_before_dispatch(loa: Loa) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    d = broadcast(loa, b.id).deliveries[0]
    service.record_reports(loa, endpoint.id, [bc.PlayReport(d.id, "started", loa.now())])
    dispatcher = Dispatcher(loa)
    dispatcher.sweep()
    assert dispatcher.scheduler.get_job(f"fire:{b.scheduled_at.isoformat()}") is not None
    fire_due(loa, b.scheduled_at)  # the timer's work
    loa.clock.advance(600)  # type: ignore[attr-defined]
    dispatcher.sweep()  # no end-of-play report ever came
    closed = broadcast(loa, b.id)
    assert closed.status == Status.FAILED
    assert closed.deliveries[0].error == "no end-of-play report"


def test_a_driver_that_crashes_does_not_stop_the_other_endpoints(loa: Loa) -> None:
    with_virtual_speakers(loa)
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    loa.drivers["agent"] = crashing = Scripted(RuntimeError("bug in a driver"))
    at = loa.now() + timedelta(seconds=5)
    bulletin = make_bulletin(loa)
    made = service.schedule_bulletin(loa, CENTRE, bulletin, [THO_SON, THO_BINH], at)
    loa.clock.advance(5)  # type: ignore[attr-defined]
    fire_due(loa, at)
    son, binh = (broadcast(loa, b.id) for b in made)
    (attempt,) = son.deliveries[0].attempts
    assert attempt.error is not None and "bug in a driver" in attempt.error
    assert not attempt.permanent and crashing.started == []
    assert binh.deliveries[0].attempts[0].error is None  # the virtual speaker was started


def test_a_transient_driver_error_is_retried_until_it_starts(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    loa.drivers["agent"] = flaky = Scripted(DriverError("connection reset"), None)
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    dispatch(loa, [b.id])
    assert retry_due(loa) == 0  # not before its backoff
    loa.clock.advance(10)  # type: ignore[attr-defined]
    assert retry_due(loa) == 1
    attempts = broadcast(loa, b.id).deliveries[0].attempts
    assert [a.error for a in attempts] == ["connection reset", None]
    assert flaky.started == [broadcast(loa, b.id).deliveries[0].id]
    loa.clock.advance(60)  # type: ignore[attr-defined]
    assert retry_due(loa) == 0  # started: nothing left to retry


def test_retries_stop_at_the_end_of_the_grace_period(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    loa.drivers["agent"] = Scripted(*[DriverError("no route to host")] * 100)
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    dispatch(loa, [b.id])
    for _ in range(200):
        loa.clock.advance(10)  # type: ignore[attr-defined]
        retry_due(loa)
    attempts = broadcast(loa, b.id).deliveries[0].attempts
    last = b.scheduled_at + loa.grace
    assert 3 <= len(attempts) < 40
    assert all(a.at <= last for a in attempts)


def test_a_command_waiting_for_the_broker_is_not_sent_twice(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    queued = DriverError("queued until the broker is back", retry=False)
    loa.drivers["agent"] = Scripted(queued)
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    dispatch(loa, [b.id])
    loa.clock.advance(60)  # type: ignore[attr-defined]
    assert retry_due(loa) == 0


def test_serving_without_virtual_speakers_leaves_them_switched_on(loa: Loa) -> None:
    assert service.sync_virtual_speakers(loa, True) == 34
    assert service.sync_virtual_speakers(loa, False) == 0
    with loa.transaction() as s:
        active = s.scalar(
            select(func.count()).where(Endpoint.kind == "virtual", Endpoint.active.is_(True))
        )
    assert active == 34


def test_two_schedulers_started_together_make_one_virtual_speaker_per_commune(
    loa: Loa,
) -> None:
    """Found by starting two `loa scheduler --virtual-speakers` at once on PostgreSQL: both
    read "no virtual speakers" and one died on the unique (commune, name)."""
    for _ in range(5):
        with loa.transaction() as s:
            s.execute(delete(Endpoint).where(Endpoint.kind == "virtual"))
        start = threading.Barrier(2)

        def sync(start: threading.Barrier) -> int:
            start.wait()
            return service.sync_virtual_speakers(loa, True)

        with ThreadPoolExecutor(2) as pool:
            both = [pool.submit(sync, start), pool.submit(sync, start)]
            assert [f.result() for f in both] == [34, 34]
        with loa.transaction() as s:
            assert s.scalar(select(func.count()).where(Endpoint.kind == "virtual")) == 34


def test_one_attempt_row_per_start_even_for_many_retries(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    loa.drivers["agent"] = Scripted(DriverError("busy"), DriverError("busy"), None)
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    dispatch(loa, [b.id])
    for _ in range(9):
        loa.clock.advance(6)  # type: ignore[attr-defined]
        retry_due(loa)
    with loa.transaction() as s:
        count = s.scalar(select(func.count()).select_from(DeliveryAttempt))
    assert count == 3
