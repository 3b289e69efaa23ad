"""Dispatch: APScheduler timers fire each broadcast at its time; the database decides.

Timers are rebuilt from rows at start and by a periodic sweep, so a restart or a
broadcast created by another process is never lost. A broadcast is claimed with a
conditional UPDATE before any driver is called, so two dispatchers never send it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import ColumnElement, Select, and_, func, select, update
from sqlalchemy.orm import Session

from scheduler import chain
from scheduler.context import Loa
from scheduler.db import bulk_insert, in_ids
from scheduler.drivers.base import DriverError, PlayItem
from scheduler.models import (
    AudioAsset,
    Broadcast,
    Bulletin,
    Delivery,
    DeliveryAttempt,
    Endpoint,
    Priority,
    Status,
)
from scheduler.service import extend_plan, resume_interrupted, sweep_health
from scheduler.status import move_delivery

log = logging.getLogger(__name__)

HEALTH_SECONDS = 10
ARM_AHEAD = timedelta(minutes=10)  # timers are set this long before their time
PLAN_SECONDS = 3600  # the planned horizon is extended every hour
RETRY_SECONDS = 5  # how often the dispatcher looks for starts to try again
RETRY_BACKOFF = (5, 10, 20, 40, 60)  # seconds after the 1st, 2nd, ... failed start
OPEN = (Status.SCHEDULED.value, Status.DELIVERED.value)
# Not dispatched yet, yet maybe playing: an agent plays by its own clock and its "started"
# can arrive before the dispatcher fires; the other endpoints must still be started.
UNDISPATCHED = (*OPEN, Status.PLAYING.value)


# One row per delivery, everything a driver needs, in one flat query (no ORM objects:
# a province's slot is 10,000 deliveries, and every millisecond here delays the last one).
ITEM_COLUMNS = (
    Delivery.id,
    Delivery.broadcast_id,
    Delivery.endpoint_id,
    Delivery.status,
    Endpoint.kind,
    Bulletin.title,
    Broadcast.priority,
    Broadcast.scheduled_at,
    AudioAsset.path,
    AudioAsset.sha256,
    AudioAsset.duration_seconds,
    AudioAsset.stream_url,
)


def items_by_kind(
    session: Session, which: ColumnElement[bool], loa: Loa
) -> dict[str, list[PlayItem]]:
    """The open deliveries `which` selects at active endpoints, as PlayItems by kind."""
    rows = session.execute(
        select(*ITEM_COLUMNS)
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .join(Endpoint, Delivery.endpoint_id == Endpoint.id)
        .join(Bulletin, Broadcast.bulletin_id == Bulletin.id)
        .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
        .where(
            which,
            Delivery.status.in_(OPEN),
            Endpoint.active.is_(True),
        )
    )
    paths: dict[str, Path] = {}
    priorities = {p.value: p for p in Priority}
    by_kind: dict[str, list[PlayItem]] = {}
    for d_id, b_id, e_id, status, kind, title, prio, at, path, sha, seconds, stream in rows:
        audio = paths.get(path) or paths.setdefault(path, loa.settings.audio_dir / path)
        by_kind.setdefault(kind, []).append(
            PlayItem(
                delivery_id=d_id,
                broadcast_id=b_id,
                endpoint_id=e_id,
                title=title,
                priority=priorities[prio],
                scheduled_at=at,
                play_until=at + loa.grace,
                audio_path=None if stream else audio,
                sha256=sha,
                duration_seconds=seconds,
                delivered=status == Status.DELIVERED,
                stream_url=stream,
            )
        )
    return by_kind


def claim(
    session: Session, which: ColumnElement[bool], now: datetime
) -> list[tuple[int, datetime]]:
    """Mark the broadcasts `which` selects as dispatched; returns the (id, scheduled_at)
    of those this dispatcher won (the others were claimed by another dispatcher first)."""
    free = (which, Broadcast.dispatched_at.is_(None), Broadcast.status.in_(UNDISPATCHED))
    won = session.execute(
        update(Broadcast)
        .where(*free, Broadcast.id.in_(skip_locked(session, select(Broadcast.id).where(*free))))
        .values(dispatched_at=now)
        .returning(Broadcast.id, Broadcast.scheduled_at)
    )
    return [(b_id, at) for b_id, at in won]


def skip_locked(session: Session, ids: Select[Any]) -> Any:
    """On PostgreSQL, the rows another process is claiming right now are skipped rather
    than waited for (FOR UPDATE SKIP LOCKED); SQLite has one writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        ids = ids.with_for_update(skip_locked=True)
    return ids.scalar_subquery()


def fire(loa: Loa, broadcast_id: int) -> None:
    """The broadcast's time has come: claim it, then start it on every endpoint."""
    dispatch(loa, [broadcast_id])


def fire_due(loa: Loa, when: datetime) -> None:
    """Every broadcast due at `when` not dispatched yet, in one batch (a slot's start in
    every commune: claimed by its time, not by a list of ids)."""
    dispatch(loa, Broadcast.scheduled_at == when)


def dispatch(loa: Loa, which: ColumnElement[bool] | Sequence[int]) -> None:
    """Claim the broadcasts `which` selects (or these ids), start them on their endpoints
    (each driver gets its items together), and record one attempt per delivery, all in a
    few transactions."""
    if not isinstance(which, ColumnElement):
        which = Broadcast.id.in_(which)
    now = loa.now()
    with loa.transaction() as session:
        won = claim(session, which, now)
        if not won:
            return
        late = [b_id for b_id, at in won if at < now - loa.grace]
        if late:  # never air late at night what was due hours ago (the server was down)
            q = select(Delivery).where(Delivery.broadcast_id.in_(late)).order_by(Delivery.id)
            for d in session.scalars(q):
                move_delivery(session, d, Status.MISSED, now, "dispatcher", "dispatcher was late")
        on_time = [b_id for b_id, at in won if at >= now - loa.grace]
        which_items = in_ids(session, Delivery.broadcast_id, on_time)
        by_kind = items_by_kind(session, which_items, loa) if on_time else {}
    start(loa, by_kind, tries={})


def retry_due(loa: Loa) -> int:
    """Start again the deliveries whose retry time has come (claimed with a conditional
    UPDATE, so two dispatchers never retry the same one); returns how many."""
    now = loa.now()
    with loa.transaction() as session:
        due = (Delivery.retry_at <= now, Delivery.status.in_(OPEN))
        ids = session.scalars(
            update(Delivery)
            .where(*due, Delivery.id.in_(skip_locked(session, select(Delivery.id).where(*due))))
            .values(retry_at=None)
            .returning(Delivery.id)
        ).all()
        if not ids:
            return 0
        by_kind = items_by_kind(session, in_ids(session, Delivery.id, ids), loa)
        tries: dict[int, int] = dict(
            session.execute(
                select(DeliveryAttempt.delivery_id, func.count())
                .where(in_ids(session, DeliveryAttempt.delivery_id, ids))
                .group_by(DeliveryAttempt.delivery_id)
            ).all()
        )
    by_kind = {k: [i for i in items if i.play_until > now] for k, items in by_kind.items()}
    start(loa, by_kind, tries)
    return sum(map(len, by_kind.values()))


def start(loa: Loa, by_kind: dict[str, list[PlayItem]], tries: dict[int, int]) -> None:
    """Hand each driver its items, then record one attempt per delivery; a transient error
    is tried again after a backoff (`tries`: attempts each delivery had before) while the
    item may still air. A driver that crashes fails its own items, never the others'."""
    errors: dict[int, DriverError] = {}
    for kind, items in by_kind.items():
        driver = loa.drivers.get(kind)
        if driver is None:
            missing = DriverError(f"no driver for {kind!r} endpoints runs here", permanent=True)
            errors.update((item.delivery_id, missing) for item in items)
            continue
        try:
            errors.update(driver.start_many(items))
        except Exception as exc:  # a bug in one driver must not silence the other endpoints
            log.exception("the %s driver failed", kind)
            crash = DriverError(f"the {kind} driver failed: {exc!r}")
            errors.update((item.delivery_id, crash) for item in items)
    by_message: dict[str, list[int]] = {}
    for delivery_id, error in errors.items():
        by_message.setdefault(str(error), []).append(delivery_id)
    for message, ids in by_message.items():  # one line per kind of failure, not per delivery
        log.warning("%d deliveries (%s%s): %s", len(ids), ids[:5], "…" * (len(ids) > 5), message)
    at = loa.now()
    retries: dict[datetime, list[int]] = {}  # ids by retry time: one UPDATE each
    for items in by_kind.values():
        for item in items:
            failed = errors.get(item.delivery_id)
            if failed is None or not failed.retry:
                continue
            n = tries.get(item.delivery_id, 0)
            when = at + timedelta(seconds=RETRY_BACKOFF[min(n, len(RETRY_BACKOFF) - 1)])
            if when < item.play_until:
                retries.setdefault(when, []).append(item.delivery_id)
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
        bulk_insert(session, DeliveryAttempt.__table__, attempts)  # type: ignore[arg-type]
        for when, ids in retries.items():
            session.execute(
                update(Delivery)
                .where(in_ids(session, Delivery.id, ids))
                .values(retry_at=when)
                .execution_options(synchronize_session=False)  # no object of them is loaded
            )
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


def close_due(loa: Loa) -> int:
    """Close every dispatched broadcast past its last possible end whose non-manual
    endpoints have not all reported; returns how many."""
    now = loa.now()
    unreported = and_(
        Delivery.status.in_(UNDISPATCHED), Delivery.endpoint.has(Endpoint.kind != "manual")
    )
    with loa.transaction() as session:
        rows = session.execute(
            select(Broadcast.id, Broadcast.scheduled_at, AudioAsset.duration_seconds)
            .join(AudioAsset, Broadcast.audio_id == AudioAsset.id)
            .where(
                Broadcast.dispatched_at.is_not(None),
                Broadcast.scheduled_at <= now - loa.grace - loa.close_margin,
                Broadcast.deliveries.any(unreported),
            )
        ).all()
    due = [b_id for b_id, at, seconds in rows if close_time(loa, at, seconds) <= now]
    for broadcast_id in due:
        close(loa, broadcast_id)
    return len(due)


def close_time(loa: Loa, scheduled_at: datetime, seconds: float) -> datetime:
    return scheduled_at + loa.grace + timedelta(seconds=seconds) + loa.close_margin


class Dispatcher:
    """Owns the APScheduler timers of one process."""

    def __init__(self, loa: Loa, scheduler: BackgroundScheduler | None = None) -> None:
        self.loa = loa
        self.scheduler = scheduler or BackgroundScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._firing: set[datetime] = set()  # instants whose fire job runs right now

    def start(self) -> None:
        self.scheduler.start()
        self.loa.on_scheduled.append(self.arm)
        self.sweep()
        self.scheduler.add_job(
            self.sweep, "interval", seconds=self.loa.settings.sweep_seconds, id="sweep",
            replace_existing=True,
        )  # fmt: skip
        self.scheduler.add_job(
            extend_plan, "interval", seconds=PLAN_SECONDS, args=[self.loa], id="plan",
            replace_existing=True, next_run_time=self.loa.now(),
        )  # fmt: skip
        self.scheduler.add_job(
            retry_due, "interval", seconds=RETRY_SECONDS, args=[self.loa], id="retry",
            replace_existing=True,
        )  # fmt: skip
        self.scheduler.add_job(
            sweep_health, "interval", seconds=HEALTH_SECONDS, args=[self.loa], id="health",
            replace_existing=True,
        )  # fmt: skip
        self.scheduler.add_job(
            chain.seal_all, "interval", seconds=RETRY_SECONDS, args=[self.loa.transaction],
            id="chain", replace_existing=True,
        )  # fmt: skip
        if self.loa.settings.resume_interrupted:
            self.scheduler.add_job(
                resume_interrupted, "interval", seconds=RETRY_SECONDS, args=[self.loa],
                id="resume", replace_existing=True,
            )  # fmt: skip

    def shutdown(self) -> None:
        if self.arm in self.loa.on_scheduled:
            self.loa.on_scheduled.remove(self.arm)
        self.scheduler.shutdown(wait=True)

    def arm(self, _broadcast_ids: list[int]) -> None:
        """Broadcasts were made or moved (here or in another process): set the timers of
        what is due soon. One indexed query, however many were made (a placement for the
        country is 148,000 rows; their timers are set 10 minutes ahead of each)."""
        self._arm(self._due_soon())

    def sweep(self) -> None:
        """Arm the instants due within ARM_AHEAD that still need a timer (after a restart,
        or made elsewhere), and close what is past its end. Reads only what is due soon,
        never the whole planned horizon."""
        self._arm(self._due_soon())
        close_due(self.loa)

    def _due_soon(self) -> list[datetime]:
        horizon = self.loa.now() + ARM_AHEAD
        with self.loa.transaction() as session:
            return list(
                session.scalars(
                    select(Broadcast.scheduled_at)
                    .where(
                        Broadcast.dispatched_at.is_(None),
                        Broadcast.status.in_(UNDISPATCHED),
                        Broadcast.scheduled_at <= horizon,
                    )
                    .distinct()
                )
            )

    def _arm(self, instants: Sequence[datetime]) -> None:
        # One timer per instant: a slot's broadcasts in every commune start together.
        for at in instants:
            if at not in self._firing:  # its job is running now and will take it
                self._add(f"fire:{at.isoformat()}", self._fire_due, at, at)

    def _fire_due(self, loa: Loa, when: datetime) -> None:
        self._firing.add(when)
        try:
            fire_due(loa, when)
        finally:
            self._firing.discard(when)

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
