import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler import areas, bulletins, service
from scheduler import broadcasts as bc
from scheduler.clock import ManualClock, SystemClock
from scheduler.context import Loa, build_loa
from scheduler.dispatch import Dispatcher, close, close_due, fire, fire_due
from scheduler.drivers.virtual import VirtualDriver
from scheduler.models import Broadcast, DeliveryAttempt, Priority, Status
from scheduler.settings import Settings
from tests.conftest import ADMIN, CENTRE, THO_BINH, THO_SON
from tests.test_scheduling import make_bulletin

pytestmark = pytest.mark.both_databases


def with_virtual_speakers(loa: Loa) -> Loa:
    loa.drivers["virtual"] = VirtualDriver(
        lambda endpoint_id, event: service.record_play_event(loa, endpoint_id, event), loa.now
    )
    service.sync_virtual_speakers(loa, True)
    return loa


def broadcast(loa: Loa, b_id: int) -> Broadcast:
    with loa.transaction() as s:
        b = s.get(Broadcast, b_id)
        assert b is not None
        _ = [(d.status, d.attempts, d.endpoint.kind) for d in b.deliveries]
        return b


def wait_for_status(loa: Loa, b_id: int, status: str, timeout: float = 15) -> Broadcast:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = broadcast(loa, b_id)
        if b.status == status:
            return b
        time.sleep(0.1)
    raise AssertionError(f"broadcast {b_id} is {broadcast(loa, b_id).status}, not {status}")


def test_two_dispatchers_firing_together_send_a_broadcast_once(settings: Settings) -> None:
    first = with_virtual_speakers(build_loa(settings))
    second = with_virtual_speakers(build_loa(settings))
    (b,) = service.schedule_bulletin(first, CENTRE, make_bulletin(first), [THO_SON], None)
    threads = [threading.Thread(target=fire, args=(ctx, b.id)) for ctx in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with first.transaction() as s:
        attempts = s.scalars(select(DeliveryAttempt)).all()
    assert len(attempts) == 1 and attempts[0].error is None
    wait_for_status(first, b.id, Status.PLAYED)
    first.close()
    second.close()


def test_a_slot_in_every_commune_is_claimed_once_in_one_batch_by_racing_dispatchers(
    settings: Settings,
) -> None:
    first, second = build_loa(settings), build_loa(settings)
    with first.transaction() as s:
        codes = [c.code for c in areas.communes(s)]
    for code in codes:
        service.create_endpoint(first, ADMIN, code, "Cụm 1", "agent")
    at = first.now() + timedelta(seconds=30)
    made = service.schedule_bulletin(first, CENTRE, make_bulletin(first), codes, at)
    threads = [threading.Thread(target=fire_due, args=(ctx, at)) for ctx in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with first.transaction() as s:
        attempts = s.scalars(select(DeliveryAttempt.delivery_id)).all()
        dispatched = s.scalars(select(Broadcast.dispatched_at)).all()
    assert len(made) == 34 and sorted(attempts) == sorted(set(attempts))
    assert len(attempts) == 34 and None not in dispatched
    first.close()
    second.close()


def test_a_broadcast_fired_after_its_grace_period_is_missed_not_aired(loa: Loa) -> None:
    with_virtual_speakers(loa)
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    loa.clock.advance(loa.settings.grace_seconds + 1)  # type: ignore[attr-defined]
    fire(loa, b.id)
    after = broadcast(loa, b.id)
    assert after.status == Status.MISSED
    assert after.deliveries[0].error == "dispatcher was late"
    assert after.deliveries[0].attempts == []


def test_an_agent_without_the_audio_at_its_time_is_recorded_as_a_failed_attempt(loa: Loa) -> None:
    service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    fire(loa, b.id)
    (attempt,) = broadcast(loa, b.id).deliveries[0].attempts
    assert attempt.error is not None and "has not confirmed" in attempt.error
    assert not attempt.permanent
    assert broadcast(loa, b.id).status == Status.SCHEDULED  # it may still fetch and play


def test_an_endpoint_kind_without_a_driver_fails_permanently(loa: Loa) -> None:
    service.sync_virtual_speakers(loa, True)  # rows exist, but no virtual driver runs here
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    fire(loa, b.id)
    after = broadcast(loa, b.id)
    assert after.status == Status.FAILED
    assert after.deliveries[0].attempts[0].permanent


def test_closing_records_endpoints_that_never_reported_and_late_proof_still_counts(
    loa: Loa,
) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    loa.clock.advance(600)  # type: ignore[attr-defined]
    close(loa, b.id)
    missed = broadcast(loa, b.id)
    assert missed.status == Status.MISSED
    assert missed.deliveries[0].error == "no proof of play"
    # The commune was offline; its agent played from cache and reports now (store-and-forward).
    d = missed.deliveries[0].id
    t = missed.scheduled_at
    service.record_reports(
        loa,
        endpoint.id,
        [
            bc.PlayReport(d, "started", t + timedelta(seconds=1)),
            bc.PlayReport(d, "finished", t + timedelta(seconds=4)),
        ],
    )
    played = broadcast(loa, b.id)
    assert played.status == Status.PLAYED
    assert played.started_at == t + timedelta(seconds=1)


def test_closing_a_broadcast_still_playing_records_the_missing_end_report(loa: Loa) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    d = broadcast(loa, b.id).deliveries[0].id
    service.record_reports(loa, endpoint.id, [bc.PlayReport(d, "started", loa.now())])
    loa.clock.advance(600)  # type: ignore[attr-defined]
    close(loa, b.id)
    assert broadcast(loa, b.id).deliveries[0].error == "no end-of-play report"


def test_a_broadcast_is_closed_when_its_reports_are_overdue_by_the_configured_margin(
    settings: Settings, clock: ManualClock
) -> None:
    ctx = build_loa(replace(settings, close_margin_seconds=5), clock=clock)
    service.create_endpoint(ctx, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(ctx, CENTRE, make_bulletin(ctx), [THO_SON], None)
    fire(ctx, b.id)  # dispatched; the agent never reports
    with ctx.transaction() as session:
        seconds = session.get_one(Broadcast, b.id).audio.duration_seconds
    clock.advance(settings.grace_seconds + seconds + 4)
    assert close_due(ctx) == 0  # its reports may still arrive
    clock.advance(2)
    assert close_due(ctx) == 1
    assert broadcast(ctx, b.id).status == Status.MISSED
    ctx.close()


@pytest.fixture
def live(settings: Settings) -> Iterator[Loa]:
    """A context on the real clock, with virtual speakers, for real APScheduler timers."""
    ctx = with_virtual_speakers(build_loa(settings, clock=SystemClock()))
    yield ctx
    ctx.close()


@pytest.mark.realtime
def test_the_dispatcher_fires_a_broadcast_at_its_time(live: Loa) -> None:
    dispatcher = Dispatcher(live)
    dispatcher.start()
    try:
        bulletin = make_bulletin(live)  # rendered first: its time is counted from now
        at = live.now() + timedelta(seconds=1.5)
        made = service.schedule_bulletin(live, CENTRE, bulletin, [THO_SON, THO_BINH], at)
        for b in made:
            played = wait_for_status(live, b.id, Status.PLAYED)
            assert played.started_at is not None and played.started_at >= at
            assert (played.started_at - at).total_seconds() < 1.0
    finally:
        dispatcher.shutdown()


@pytest.mark.realtime
def test_a_restarted_dispatcher_rebuilds_its_timers_from_the_database(
    live: Loa, tmp_path: Path
) -> None:
    bulletin = make_bulletin(live)
    at = live.now() + timedelta(seconds=3)
    (b,) = service.schedule_bulletin(live, CENTRE, bulletin, [THO_SON], at)
    # No dispatcher was running when it was scheduled; a new one finds it in the rows.
    dispatcher = Dispatcher(live)
    dispatcher.start()
    try:
        assert dispatcher.scheduler.get_job(f"fire:{at.isoformat()}") is not None
        wait_for_status(live, b.id, Status.PLAYED)
    finally:
        dispatcher.shutdown()


@pytest.mark.realtime
def test_an_emergency_interrupts_the_broadcast_playing_in_the_commune(live: Loa) -> None:
    dispatcher = Dispatcher(live)
    dispatcher.start()
    try:
        long_text = "Thông báo về cải cách hành chính. " * 12
        with live.transaction() as s:
            normal = bulletins.create_bulletin(
                s, CENTRE, title="Dài", text=long_text, topic="", priority=Priority.NORMAL,
                now=live.now(), max_chars=20000,
            )  # fmt: skip
            bulletins.approve(s, ADMIN, normal, live.now())
        (first,) = service.schedule_bulletin(live, CENTRE, normal.id, [THO_SON], None)
        wait_for_status(live, first.id, Status.PLAYING)
        alarm = make_bulletin(live, priority=Priority.EMERGENCY)
        (second,) = service.schedule_bulletin(live, CENTRE, alarm, [THO_SON], None)
        interrupted = wait_for_status(live, first.id, Status.INTERRUPTED)
        assert interrupted.finished_at is not None
        assert interrupted.deliveries[0].error is not None
        assert "interrupted by" in interrupted.deliveries[0].error
        wait_for_status(live, second.id, Status.PLAYED)
    finally:
        dispatcher.shutdown()


def test_an_interruption_reported_without_its_lost_start_is_still_recorded(loa: Loa) -> None:
    endpoint, _ = service.create_endpoint(loa, ADMIN, THO_SON, "Cụm 1", "agent")
    (b,) = service.schedule_bulletin(loa, CENTRE, make_bulletin(loa), [THO_SON], None)
    loa.clock.advance(600)  # type: ignore[attr-defined]
    close(loa, b.id)
    assert broadcast(loa, b.id).status == Status.MISSED
    with loa.transaction() as s:
        report = bc.PlayReport(b.deliveries[0].id, "interrupted", loa.now(), "agent restarted")
        assert bc.record_report(s, s.merge(endpoint), report, loa.now())
    assert broadcast(loa, b.id).status == Status.INTERRUPTED
