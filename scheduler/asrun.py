"""The as-run log: which broadcasts aired where and when, filtered and exported."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, object_session, selectinload

from scheduler.auth import Actor
from scheduler.errors import InvalidInput
from scheduler.models import Area, Broadcast, Bulletin, Delivery, Role, Status, User


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


def reason(b: Broadcast, lang: str = "vi") -> str:
    """Why a broadcast did not (fully) air: the operator's word, else a device's error."""
    text = b.reason
    if not text and b.status in NOT_AIRED:
        text = next((d.error for d in b.deliveries if d.error and d.status != "played"), None)
    return label(REASON_VI, text, lang)


def aired_seconds(b: Broadcast) -> float:
    """How long a broadcast was on air: its proof's start to end, else its audio's length."""
    if b.status not in (Status.PLAYED, Status.PARTIAL, Status.INTERRUPTED):
        return 0.0
    if b.started_at and b.finished_at and b.finished_at > b.started_at:
        return (b.finished_at - b.started_at).total_seconds()
    return 0.0 if b.status == Status.INTERRUPTED else b.audio.duration_seconds


def export_row(b: Broadcast, tz: ZoneInfo, names: Mapping[str, str], lang: str) -> list[object]:
    """One broadcast in the export's columns: local (naive) datetimes, minutes, labels."""

    def when(moment: datetime | None) -> datetime | None:
        return moment.astimezone(tz).replace(tzinfo=None) if moment else None

    values: dict[str, object] = {
        "id": b.id,
        "commune_code": b.commune.code,
        "commune": b.commune.name,
        "bulletin_id": b.bulletin_id,
        "title": b.bulletin.title,
        "topic": b.bulletin.topic,
        "kind": label(KIND_VI, b.bulletin.kind, lang),
        "priority": label(PRIORITY_VI, b.priority, lang),
        "scheduled_at": when(b.scheduled_at),
        "status": label(STATUS_VI, b.status, lang),
        "started_at": when(b.started_at),
        "finished_at": when(b.finished_at),
        "lateness_seconds": lateness_seconds(b),
        "duration_minutes": round(b.audio.duration_seconds / 60, 2),
        "aired_minutes": round(aired_seconds(b) / 60, 2),
        "confirmation": label(CONFIRMATION_VI, b.confirmation, lang),
        "confirmed_by": actor_name(b.confirmed_by, names, lang),
        "reason": reason(b, lang),
    }
    return [values[key] for key, _, _ in COLUMNS]


def export_rows(
    broadcasts: Iterable[Broadcast], tz: ZoneInfo, lang: str = "vi"
) -> list[list[object]]:
    """The broadcasts in the export's columns (people's names looked up once)."""
    rows: list[list[object]] = []
    names: dict[str, str] | None = None
    for b in broadcasts:
        if names is None:
            session = object_session(b)
            names = user_names(session) if session is not None else {}
        rows.append(export_row(b, tz, names, lang))
    return rows


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


def write_csv(broadcasts: Iterable[Broadcast], out: IO[str], tz: ZoneInfo, lang: str = "vi") -> int:
    """Write the as-run CSV, one row per broadcast, in `lang` (vi, en); returns the row
    count. The caller adds the UTF-8 BOM (Excel then opens Vietnamese correctly)."""
    return write_rows(export_rows(broadcasts, tz, lang), out, lang)
