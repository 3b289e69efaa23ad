"""Endpoint health: heartbeats held in memory, written in batches; up / late / down as rows.

An agent's poll is its heartbeat. Writing it to the database at every poll would cost
a write per idle endpoint (a province: 6,000 writes every 25 s); instead the web
process keeps the newest beat per endpoint and the sweep writes them together, then
moves each endpoint whose state changed and records the change as an EndpointEvent.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, update
from sqlalchemy.orm import Session

from scheduler.models import Endpoint, EndpointEvent

UP, LATE, DOWN = "up", "late", "down"
# Kinds whose device tells us it is alive; the others live in the dispatching process
# (virtual, local, icecast) or need no device (manual), so that process vouches for them.
DEVICE_KINDS = ("agent", "mqtt")


@dataclass(frozen=True)
class Facts:
    """What a device says of itself when it polls (absent values clear the old ones)."""

    agent_version: str | None = None
    cache_free_bytes: int | None = None
    clock_offset_seconds: float | None = None
    missing_audio: int | None = None
    cache_error: str | None = None


@dataclass(frozen=True)
class Beat:
    at: datetime
    facts: Facts | None = None  # None: a report, which says nothing of the device


class Heartbeats:
    """The newest heartbeat of each endpoint since the last flush (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, Beat] = {}

    def beat(self, endpoint_id: int, beat: Beat) -> None:
        with self._lock:
            old = self._pending.get(endpoint_id)
            if beat.facts is None and old is not None:
                beat = Beat(beat.at, old.facts)  # keep what the last poll said
            self._pending[endpoint_id] = beat

    def take(self) -> dict[int, Beat]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending


def write_beats(session: Session, beats: dict[int, Beat]) -> None:
    """Batched UPDATEs for all beats (one statement per shape)."""
    with_facts = [
        {"id": endpoint_id, "last_seen_at": beat.at, **asdict(beat.facts)}
        for endpoint_id, beat in beats.items()
        if beat.facts is not None
    ]
    seen_only = [
        {"id": endpoint_id, "last_seen_at": beat.at}
        for endpoint_id, beat in beats.items()
        if beat.facts is None
    ]
    for rows in (with_facts, seen_only):
        if rows:
            session.execute(update(Endpoint), rows)


def state_of(last_seen: datetime | None, now: datetime, late: timedelta, down: timedelta) -> str:
    if last_seen is None or now - last_seen >= down:
        return DOWN
    return LATE if now - last_seen >= late else UP


def move_states(
    session: Session, now: datetime, late: timedelta, down: timedelta
) -> list[dict[str, Any]]:
    """Move every active endpoint whose heartbeat says another state, recording one
    `endpoint_events` row per move (returned as dicts). Set-based — one UPDATE per
    (old, new) pair — so 10,000 endpoints going quiet together hold the database for
    milliseconds; conditional, so two sweeping processes never record a move twice."""
    up_since, late_since = now - late, now - down
    wanted = {
        UP: Endpoint.last_seen_at >= up_since,
        LATE: (Endpoint.last_seen_at < up_since) & (Endpoint.last_seen_at >= late_since),
        DOWN: or_(Endpoint.last_seen_at.is_(None), Endpoint.last_seen_at < late_since),
    }
    events: list[dict[str, Any]] = []
    for new, condition in wanted.items():
        for old in (state for state in wanted if state != new):
            moved = session.execute(
                update(Endpoint)
                .where(Endpoint.active.is_(True), Endpoint.state == old, condition)
                .values(state=new, state_since=now)
                .returning(Endpoint.id, Endpoint.last_seen_at)
                .execution_options(synchronize_session=False)
            ).all()
            events.extend(
                {
                    "endpoint_id": endpoint_id,
                    "at": now,
                    "from_state": old,
                    "to_state": new,
                    "reason": "no heartbeat yet"
                    if seen is None
                    else f"last heartbeat {seen.isoformat()}",
                }
                for endpoint_id, seen in moved
            )
    if events:
        session.execute(insert(EndpointEvent), events)
    return events
