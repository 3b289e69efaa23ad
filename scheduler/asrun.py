"""The as-run log: which broadcasts aired where and when, filtered and exported."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload

from scheduler.auth import Actor
from scheduler.errors import InvalidInput
from scheduler.models import Area, Broadcast, Bulletin, Delivery, Role, Status

CSV_COLUMNS = (
    "id",
    "commune_code",
    "commune",
    "bulletin_id",
    "title",
    "topic",
    "priority",
    "scheduled_at",
    "status",
    "started_at",
    "finished_at",
    "lateness_seconds",
    "duration_seconds",
    "confirmation",
    "confirmed_by",
    "reason",
)


@dataclass(frozen=True)
class LogFilter:
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    commune_code: str | None = None
    status: str | None = None
    topic: str | None = None


def parse_bound(value: str | None, tz: ZoneInfo, *, end: bool) -> datetime | None:
    """'2026-11-26' (a local day; as an end bound, the whole day) or ISO 8601 with offset."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time(0), tz)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", "invalid_time"
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{value!r} needs a UTC offset, e.g. +07:00", "invalid_time")
    return moment


def make_filter(
    tz: ZoneInfo,
    start: str | None = None,
    end: str | None = None,
    commune: str | None = None,
    status: str | None = None,
    topic: str | None = None,
) -> LogFilter:
    if status and status not in {s.value for s in Status}:
        raise InvalidInput(f"unknown status {status!r}", "invalid_status")
    return LogFilter(
        start=parse_bound(start, tz, end=False),
        end=parse_bound(end, tz, end=True),
        commune_code=commune or None,
        status=status or None,
        topic=topic or None,
    )


def filter_from_query(tz: ZoneInfo, args: Mapping[str, str]) -> LogFilter:
    """The filter of a query string: ?from=&to=&commune=&status=&topic= (API and panel)."""
    return make_filter(
        tz,
        start=args.get("from"),
        end=args.get("to"),
        commune=args.get("commune"),
        status=args.get("status"),
        topic=args.get("topic"),
    )


def _query(actor: Actor, f: LogFilter, deliveries: bool = True) -> Select[Broadcast]:
    q = (
        select(Broadcast)
        .join(Broadcast.commune)
        .join(Broadcast.bulletin)
        .options(
            selectinload(Broadcast.commune),
            selectinload(Broadcast.bulletin),
            selectinload(Broadcast.audio),
        )
        .order_by(Broadcast.scheduled_at, Area.code, Broadcast.id)
    )
    if deliveries:
        q = q.options(selectinload(Broadcast.deliveries).selectinload(Delivery.endpoint))
    if actor.role == Role.OPERATOR:
        q = q.where(Broadcast.commune_id == actor.commune_id)
    if f.start is not None:
        q = q.where(Broadcast.scheduled_at >= f.start)
    if f.end is not None:
        q = q.where(Broadcast.scheduled_at < f.end)
    if f.commune_code:
        q = q.where(Area.code == f.commune_code)
    if f.status:
        q = q.where(Broadcast.status == f.status)
    if f.topic:
        q = q.where(Bulletin.topic == f.topic)
    return q


def query(session: Session, actor: Actor, f: LogFilter, deliveries: bool = True) -> list[Broadcast]:
    """The as-run rows; `deliveries=False` when the caller shows broadcasts only (a
    district's day is thousands of deliveries)."""
    return list(session.scalars(_query(actor, f, deliveries)))


def local_iso(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return moment.astimezone(tz).isoformat() if moment else None


def lateness_seconds(b: Broadcast) -> float | None:
    """How late the broadcast started, in seconds (negative: early)."""
    if b.started_at is None:
        return None
    return round((b.started_at - b.scheduled_at).total_seconds(), 3)


def as_run_row(b: Broadcast, tz: ZoneInfo) -> dict[str, object]:
    """One as-run row, with local times; the CSV's columns and the API's broadcast fields."""
    return {
        "id": b.id,
        "commune_code": b.commune.code,
        "commune": b.commune.name,
        "bulletin_id": b.bulletin_id,
        "title": b.bulletin.title,
        "topic": b.bulletin.topic,
        "priority": b.priority,
        "scheduled_at": local_iso(b.scheduled_at, tz),
        "status": b.status,
        "started_at": local_iso(b.started_at, tz),
        "finished_at": local_iso(b.finished_at, tz),
        "lateness_seconds": lateness_seconds(b),
        "duration_seconds": b.audio.duration_seconds,
        "confirmation": b.confirmation,
        "confirmed_by": b.confirmed_by,
        "reason": b.reason,
    }


def write_csv(broadcasts: Iterable[Broadcast], out: IO[str], tz: ZoneInfo) -> int:
    """Write the as-run CSV (UTF-8, one row per broadcast); returns the row count."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for b in broadcasts:
        writer.writerow({k: "" if v is None else v for k, v in as_run_row(b, tz).items()})
        count += 1
    return count
