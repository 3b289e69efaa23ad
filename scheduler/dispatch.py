"""Dispatch: APScheduler timers fire each broadcast at its time; the database decides.

Timers are rebuilt from rows at start and by a periodic sweep, so a restart or a
broadcast created by another process is never lost. A broadcast is claimed with a
conditional UPDATE before any driver is called, so two dispatchers never send it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, contains_eager, joinedload

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


def claim(session: Session, broadcast_ids: Sequence[int], now: datetime) -> list[int]:
    """Mark broadcasts as dispatched; returns those this dispatcher won (the others
    were claimed by another dispatcher first)."""
    if not broadcast_ids:
        return []
    won = session.scalars(
        update(Broadcast)
        .where(
            Broadcast.id.in_(broadcast_ids),
            Broadcast.dispatched_at.is_(None),
            Broadcast.status.in_(OPEN),
        )
        .values(dispatched_at=now)
        .returning(Broadcast.id)
    )
    return list(won)


def fire(loa: Loa, broadcast_id: int) -> None:
    """The broadcast's time has come: claim it, then start it on every endpoint."""
    dispatch(loa, [broadcast_id])


def fire_due(loa: Loa, when: datetime) -> None:
    """Every broadcast due at `when` not dispatched yet, in one batch."""
    with loa.transaction() as session:
        ids = session.scalars(
            select(Broadcast.id).where(
                Broadcast.scheduled_at == when,
                Broadcast.dispatched_at.is_(None),
                Broadcast.status.in_(OPEN),
            )
        ).all()
    dispatch(loa, ids)


def dispatch(loa: Loa, broadcast_ids: Sequence[int]) -> None:
    """Claim these broadcasts, start them on their endpoints (each driver gets its items
    together), and record one attempt per delivery, all in a few transactions."""
    now = loa.now()
    by_kind: dict[str, list[PlayItem]] = {}
    with loa.transaction() as session:
        won = claim(session, broadcast_ids, now)
        if not won:
            return
        deliveries = session.scalars(
            select(Delivery)
            .join(Delivery.broadcast)
            .where(Delivery.broadcast_id.in_(won))
            .options(
                contains_eager(Delivery.broadcast).options(
                    joinedload(Broadcast.bulletin), joinedload(Broadcast.audio)
                ),
                joinedload(Delivery.endpoint),
            )
        ).all()
        for d in deliveries:
            if now > d.broadcast.scheduled_at + loa.grace:
                # Never air late at night what was due hours ago (the server was down).
                move_delivery(session, d, Status.MISSED, now, "dispatcher", "dispatcher was late")
            elif d.status in OPEN and d.endpoint.active:
                by_kind.setdefault(d.endpoint.kind, []).append(play_item(loa, d))
    errors: dict[int, DriverError] = {}
    for kind, items in by_kind.items():
        driver = loa.drivers.get(kind)
        if driver is None:
            missing = DriverError(f"no driver for {kind!r} endpoints runs here", permanent=True)
            errors.update((item.delivery_id, missing) for item in items)
        else:
            errors.update(driver.start_many(items))
    for delivery_id, error in errors.items():
        log.warning("delivery %s: %s", delivery_id, error)
    at = loa.now()
    attempts = [
        {
            "delivery_id": item.delivery_id,
            "at": at,
            "action": "start",
            "error": str(errors[item.delivery_id]) if item.delivery_id in errors else None,
            "permanent": item.delivery_id in errors and errors[item.delivery_id].permanent,
        }
        for items in by_kind.values()
        for item in items
    ]
    with loa.transaction() as session:
        if attempts:
            session.execute(insert(DeliveryAttempt), attempts)
        for delivery_id, error in errors.items():
            if error.permanent:
                delivery = session.get(Delivery, delivery_id)
                assert delivery is not None
                move_delivery(session, delivery, Status.FAILED, at, "dispatcher", str(error))


def close(loa: Loa, broadcast_id: int) -> None:
    """Past its last possible end: endpoints that never reported are recorded as such.
    A later proof of play (store-and-forward) still moves them to played."""
    now = loa.now()
    with loa.transaction() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None:
            return
        for d in broadcast.deliveries:
            if d.endpoint.kind == "manual":
                continue  # only the commune operator can say; scheduler.watch asks them
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
            # One timer per instant: a slot's broadcasts in every commune start together.
            at = b.scheduled_at
            self._add(f"fire:{at.isoformat()}", fire_due, at, at)
        if b.deliveries:
            self._add(f"close:{b.id}", close, close_time(self.loa, b), b.id)

    def _add(self, job_id: str, func: Any, when: datetime, arg: Any) -> None:
        if self.scheduler.get_job(job_id) is None:
            self.scheduler.add_job(
                func,
                "date",
                run_date=when,
                args=[self.loa, arg],
                id=job_id,
                replace_existing=True,  # the sweep and arm() may race to add it
            )
