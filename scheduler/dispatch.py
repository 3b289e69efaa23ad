"""Dispatch: APScheduler timers fire each broadcast at its time; the database decides.

Timers are rebuilt from rows at start and by a periodic sweep, so a restart or a
broadcast created by another process is never lost. A broadcast is claimed with a
conditional UPDATE before any driver is called, so two dispatchers never send it twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from scheduler.context import Loa
from scheduler.drivers.base import DriverError, PlayItem
from scheduler.models import Broadcast, Delivery, DeliveryAttempt, Priority, Status
from scheduler.service import sweep_health
from scheduler.status import move_delivery

log = logging.getLogger(__name__)

CLOSE_MARGIN = timedelta(seconds=30)  # time for an endpoint's last report to arrive
SWEEP_SECONDS = 20
HEALTH_SECONDS = 10
OPEN = (Status.SCHEDULED.value, Status.DELIVERED.value)


def play_item(loa: Loa, delivery: Delivery) -> PlayItem:
    b = delivery.broadcast
    return PlayItem(
        delivery_id=delivery.id,
        broadcast_id=b.id,
        endpoint_id=delivery.endpoint_id,
        title=b.bulletin.title,
        priority=Priority(b.priority),
        scheduled_at=b.scheduled_at,
        play_until=b.scheduled_at + loa.grace,
        audio_path=loa.settings.audio_dir / b.audio.path,
        sha256=b.audio.sha256,
        duration_seconds=b.audio.duration_seconds,
        delivered=delivery.status == Status.DELIVERED,
    )


def claim(session: Session, broadcast_id: int, now: datetime) -> bool:
    """Mark a broadcast as dispatched; False when another dispatcher got there first."""
    result = session.execute(
        update(Broadcast)
        .where(
            Broadcast.id == broadcast_id,
            Broadcast.dispatched_at.is_(None),
            Broadcast.status.in_(OPEN),
        )
        .values(dispatched_at=now)
    )
    return cast(CursorResult[Any], result).rowcount == 1


def fire(loa: Loa, broadcast_id: int) -> None:
    """The broadcast's time has come: claim it, then start it on every endpoint."""
    now = loa.now()
    with loa.transaction() as session:
        if not claim(session, broadcast_id, now):
            return
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        if now > broadcast.scheduled_at + loa.grace:
            # Never air late at night what was due hours ago (the server was down).
            for d in broadcast.deliveries:
                move_delivery(session, d, Status.MISSED, now, "dispatcher", "dispatcher was late")
            return
        items = [
            (play_item(loa, d), d.endpoint.kind)
            for d in broadcast.deliveries
            if d.status in OPEN and d.endpoint.active
        ]
    for item, kind in items:
        driver = loa.drivers.get(kind)
        error: DriverError | None = None
        try:
            if driver is None:
                raise DriverError(f"no driver for {kind!r} endpoints runs here", permanent=True)
            driver.start(item)
        except DriverError as exc:
            error = exc
            log.warning("delivery %s: %s", item.delivery_id, exc)
        with loa.transaction() as session:
            session.add(
                DeliveryAttempt(
                    delivery_id=item.delivery_id,
                    at=loa.now(),
                    action="start",
                    error=str(error) if error else None,
                    permanent=bool(error and error.permanent),
                )
            )
            if error is not None and error.permanent:
                delivery = session.get(Delivery, item.delivery_id)
                assert delivery is not None
                move_delivery(session, delivery, Status.FAILED, loa.now(), "dispatcher", str(error))


def close(loa: Loa, broadcast_id: int) -> None:
    """Past its last possible end: endpoints that never reported are recorded as such.
    A later proof of play (store-and-forward) still moves them to played."""
    now = loa.now()
    with loa.transaction() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return
        for d in broadcast.deliveries:
            if d.status in OPEN:
                move_delivery(session, d, Status.MISSED, now, "dispatcher", "no proof of play")
            elif d.status == Status.PLAYING:
                move_delivery(session, d, Status.FAILED, now, "dispatcher", "no end-of-play report")


def close_time(loa: Loa, broadcast: Broadcast) -> datetime:
    length = timedelta(seconds=broadcast.audio.duration_seconds)
    return broadcast.scheduled_at + loa.grace + length + CLOSE_MARGIN


class Dispatcher:
    """Owns the APScheduler timers of one process."""

    def __init__(self, loa: Loa, scheduler: BackgroundScheduler | None = None) -> None:
        self.loa = loa
        self.scheduler = scheduler or BackgroundScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    def start(self) -> None:
        self.scheduler.start()
        self.loa.on_scheduled.append(self.arm)
        self.sweep()
        self.scheduler.add_job(
            self.sweep, "interval", seconds=SWEEP_SECONDS, id="sweep", replace_existing=True
        )
        self.scheduler.add_job(
            sweep_health, "interval", seconds=HEALTH_SECONDS, args=[self.loa], id="health",
            replace_existing=True,
        )  # fmt: skip

    def shutdown(self) -> None:
        if self.arm in self.loa.on_scheduled:
            self.loa.on_scheduled.remove(self.arm)
        self.scheduler.shutdown(wait=True)

    def arm(self, broadcast_ids: list[int]) -> None:
        """Set the fire and close timers of these broadcasts."""
        with self.loa.transaction() as session:
            rows = session.scalars(select(Broadcast).where(Broadcast.id.in_(broadcast_ids)))
            for b in rows:
                self._arm(b)

    def sweep(self) -> None:
        """Arm every broadcast that still needs a timer (after a restart, or made elsewhere)."""
        with self.loa.transaction() as session:
            undispatched = session.scalars(
                select(Broadcast).where(
                    Broadcast.dispatched_at.is_(None), Broadcast.status.in_(OPEN)
                )
            )
            unclosed = session.scalars(
                select(Broadcast).where(
                    Broadcast.dispatched_at.is_not(None),
                    Broadcast.status.in_((*OPEN, Status.PLAYING.value)),
                    Broadcast.deliveries.any(),
                )
            )
            for b in [*undispatched, *unclosed]:
                self._arm(b)

    def _arm(self, b: Broadcast) -> None:
        """Add the timers this broadcast still lacks."""
        if b.dispatched_at is None:
            self._add(f"fire:{b.id}", fire, b.scheduled_at, b.id)
        if b.deliveries:
            self._add(f"close:{b.id}", close, close_time(self.loa, b), b.id)

    def _add(self, job_id: str, func: Any, when: datetime, broadcast_id: int) -> None:
        if self.scheduler.get_job(job_id) is None:
            self.scheduler.add_job(
                func,
                "date",
                run_date=when,
                args=[self.loa, broadcast_id],
                id=job_id,
                replace_existing=True,  # the sweep and arm() may race to add it
            )
