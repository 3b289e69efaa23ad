"""The as-run log: which broadcasts aired where and when, filtered and exported."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import Session, selectinload

from scheduler.auth import Actor
from scheduler.errors import InvalidInput
from scheduler.models import (
    Area,
    AudioAsset,
    Broadcast,
    Bulletin,
    Delivery,
    Role,
    Status,
    User,
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
    q: Select[Broadcast] = restrict(
        select(Broadcast)
        .join(Broadcast.commune)
        .join(Broadcast.bulletin)
        .options(
            selectinload(Broadcast.commune),
            selectinload(Broadcast.bulletin),
            selectinload(Broadcast.audio),
        )
        .order_by(Broadcast.scheduled_at, Area.code, Broadcast.id),
        actor,
        f,
    )
    if deliveries:
        q = q.options(selectinload(Broadcast.deliveries).selectinload(Delivery.endpoint))
    return q


def restrict(q: Any, actor: Actor, f: LogFilter) -> Any:
    """`q` limited to the filter and the actor (joined to the commune to filter by its
    code, to the bulletin to filter by topic)."""
    if actor.role == Role.OPERATOR:
        q = q.where(Broadcast.commune_id.in_(actor.communes))
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


def query(
    session: Session,
    actor: Actor,
    f: LogFilter,
    deliveries: bool = True,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> list[Broadcast]:
    """The as-run rows; `deliveries=False` when the caller shows broadcasts only (a
    district's day is thousands of deliveries); `offset` and `limit`: one page."""
    return list(session.scalars(_query(actor, f, deliveries).offset(offset).limit(limit)))


def count(session: Session, actor: Actor, f: LogFilter) -> int:
    """How many broadcasts the filter gives `actor` (counted in the database)."""
    q = select(func.count(Broadcast.id))
    if f.commune_code:
        q = q.join(Broadcast.commune)
    if f.topic:
        q = q.join(Broadcast.bulletin)
    return session.scalar(restrict(q, actor, f)) or 0


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


# The export's columns: key, Vietnamese header, English header.
COLUMNS = (
    ("id", "Mã lượt phát", "ID"),
    ("commune_code", "Mã xã", "Commune code"),
    ("commune", "Xã", "Commune"),
    ("bulletin_id", "Mã bản tin", "Bulletin ID"),
    ("title", "Tiêu đề", "Title"),
    ("topic", "Chủ đề", "Topic"),
    ("kind", "Loại bản tin", "Kind"),
    ("priority", "Mức ưu tiên", "Priority"),
    ("scheduled_at", "Giờ phát theo lịch", "Scheduled at"),
    ("status", "Trạng thái", "Status"),
    ("started_at", "Bắt đầu", "Started at"),
    ("finished_at", "Kết thúc", "Finished at"),
    ("lateness_seconds", "Trễ (giây)", "Late by (seconds)"),
    ("duration_minutes", "Thời lượng (phút)", "Duration (minutes)"),
    ("aired_minutes", "Số phút đã phát", "Minutes aired"),
    ("confirmation", "Xác nhận qua", "Confirmed through"),
    ("confirmed_by", "Người xác nhận", "Confirmed by"),
    ("reason", "Lý do", "Reason"),
)
TIME_COLUMNS = ("scheduled_at", "started_at", "finished_at")
CSV_TIME = "%d/%m/%Y %H:%M:%S"  # what Excel reads as a date and time

STATUS_VI = {
    "scheduled": "đã lên lịch",
    "delivered": "đã tải về loa",
    "playing": "đang phát",
    "played": "đã phát",
    "partial": "phát một phần",
    "interrupted": "bị ngắt",
    "failed": "phát lỗi",
    "missed": "không phát",
    "cancelled": "đã hủy",
}
PRIORITY_VI = {"normal": "thông thường", "priority": "ưu tiên", "emergency": "khẩn cấp"}
KIND_VI = {"speech": "đọc văn bản", "recording": "bản ghi âm", "relay": "tiếp sóng"}
CONFIRMATION_VI = {"device": "thiết bị", "operator": "cán bộ xã"}
# The reasons the dispatcher and the device protocol write, in Vietnamese.
REASON_VI = {
    "no proof of play": "không có xác nhận phát từ thiết bị",
    "no end-of-play report": "thiết bị không báo phát xong",
    "dispatcher was late": "quá thời gian cho phép, không kịp phát",
    "the endpoint played audio with another checksum": "thiết bị phát tệp âm thanh khác",
}
NOT_AIRED = frozenset({Status.MISSED, Status.FAILED, Status.INTERRUPTED, Status.PARTIAL})


def headers(lang: str) -> list[str]:
    return [vi if lang == "vi" else en for _, vi, en in COLUMNS]


def label(table: Mapping[str, str], value: str | None, lang: str) -> str:
    """A coded value in the export's language (English: the code itself)."""
    if not value:
        return ""
    return table.get(value, value) if lang == "vi" else value


def user_names(session: Session) -> dict[str, str]:
    """Actor ids ('user:thoson') to people's names, for 'who confirmed'."""
    rows = session.execute(select(User.username, User.display_name))
    return {f"user:{username}": name for username, name in rows}


def actor_name(actor: str | None, names: Mapping[str, str], lang: str) -> str:
    """'user:thoson' -> its display name; 'endpoint:Cụm 1' -> 'Thiết bị: Cụm 1'."""
    if not actor:
        return ""
    if actor in names:
        return names[actor]
    kind, _, name = actor.partition(":")
    words = {"user": ("", ""), "endpoint": ("Thiết bị", "Endpoint"),
             "token": ("API", "API"), "dispatcher": ("Bộ điều phối", "Dispatcher")}  # fmt: skip
    vi, en = words.get(kind, (kind, kind))
    prefix = vi if lang == "vi" else en
    return f"{prefix}: {name}" if prefix and name else name or prefix


def reason_column() -> ColumnElement[str | None]:
    """Why a broadcast did not (fully) air: the operator's word, else its first device
    error."""
    device = (
        select(Delivery.error)
        .where(
            Delivery.broadcast_id == Broadcast.id,
            Delivery.error.is_not(None),
            Delivery.error != "",
            Delivery.status != Status.PLAYED,
        )
        .order_by(Delivery.id)
        .limit(1)
        .scalar_subquery()
    )
    return case(
        ((Broadcast.reason.is_not(None)) & (Broadcast.reason != ""), Broadcast.reason),
        (Broadcast.status.in_(NOT_AIRED), device),
        else_=None,
    )


def _aired(status: str, started: datetime | None, finished: datetime | None, audio: float) -> float:
    if status not in (Status.PLAYED, Status.PARTIAL, Status.INTERRUPTED):
        return 0.0
    if started and finished and finished > started:
        return (finished - started).total_seconds()
    return 0.0 if status == Status.INTERRUPTED else audio


def export_query(actor: Actor, f: LogFilter) -> Select[Any]:
    """The export's facts of each broadcast as flat rows (no ORM objects: a province's
    year is 400,000 broadcasts), in the log's order."""
    q = (
        select(
            Broadcast.id,
            Area.code.label("commune_code"),
            Area.name.label("commune"),
            Broadcast.bulletin_id,
            Bulletin.title,
            Bulletin.topic,
            Bulletin.kind,
            Broadcast.priority,
            Broadcast.scheduled_at,
            Broadcast.status,
            Broadcast.started_at,
            Broadcast.finished_at,
            AudioAsset.duration_seconds,
            Broadcast.confirmation,
            Broadcast.confirmed_by,
            reason_column().label("reason"),
        )
        .join(Broadcast.commune)
        .join(Broadcast.bulletin)
        .join(Broadcast.audio)
        .order_by(Broadcast.scheduled_at, Area.code, Broadcast.id)
    )
    out: Select[Any] = restrict(q, actor, f)
    return out


def export_row(r: Any, tz: ZoneInfo, names: Mapping[str, str], lang: str) -> list[object]:
    """One row of export_query in the export's columns: local (naive) datetimes, minutes,
    labels."""

    def when(moment: datetime | None) -> datetime | None:
        return moment.astimezone(tz).replace(tzinfo=None) if moment else None

    late = round((r.started_at - r.scheduled_at).total_seconds(), 3) if r.started_at else None
    aired = _aired(r.status, r.started_at, r.finished_at, r.duration_seconds)
    return [
        r.id,
        r.commune_code,
        r.commune,
        r.bulletin_id,
        r.title,
        r.topic,
        label(KIND_VI, r.kind, lang),
        label(PRIORITY_VI, r.priority, lang),
        when(r.scheduled_at),
        label(STATUS_VI, r.status, lang),
        when(r.started_at),
        when(r.finished_at),
        late,
        round(r.duration_seconds / 60, 2),
        round(aired / 60, 2),
        label(CONFIRMATION_VI, r.confirmation, lang),
        actor_name(r.confirmed_by, names, lang),
        label(REASON_VI, r.reason, lang),
    ]  # in the order of COLUMNS


def export_rows(
    session: Session, actor: Actor, f: LogFilter, tz: ZoneInfo, lang: str = "vi"
) -> Iterator[list[object]]:
    """The filter's broadcasts in the export's columns, streamed in batches."""
    names = user_names(session)
    rows = session.execute(export_query(actor, f).execution_options(yield_per=2000))
    for r in rows:
        yield export_row(r, tz, names, lang)


def write_rows(rows: Iterable[list[object]], out: IO[str], lang: str = "vi") -> int:
    """Export rows as CSV (headers in `lang`, times dd/mm/yyyy HH:MM:SS); returns the count."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(lang))
    count = 0
    for row in rows:
        writer.writerow(
            "" if v is None else v.strftime(CSV_TIME) if isinstance(v, datetime) else v for v in row
        )
        count += 1
    return count
