"""The as-run log: which broadcasts aired where and when, filtered and exported."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Numeric,
    Select,
    case,
    cast,
    extract,
    func,
    select,
)
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


LOG_ORDER = (Broadcast.scheduled_at, Area.code, Broadcast.id)


def _query(actor: Actor, f: LogFilter, deliveries: bool = True) -> Select[Broadcast]:
    q: Select[Broadcast] = restrict(
        select(Broadcast)
        .join(Broadcast.commune)
        .join(Broadcast.bulletin)
        .options(selectinload(Broadcast.commune), selectinload(Broadcast.bulletin))
        .order_by(*LOG_ORDER),
        actor,
        f,
    )
    if deliveries:
        q = q.options(
            selectinload(Broadcast.audio),
            selectinload(Broadcast.deliveries).selectinload(Delivery.endpoint),
        )
    return q


def restrict(q: Any, actor: Actor, f: LogFilter) -> Any:
    """`q` limited to the filter and the actor (joined to the bulletin to filter by
    topic). A commune is looked up by its code, so its broadcasts are found by index."""
    if actor.role == Role.OPERATOR:
        q = q.where(Broadcast.commune_id.in_(actor.communes))
    if f.start is not None:
        q = q.where(Broadcast.scheduled_at >= f.start)
    if f.end is not None:
        q = q.where(Broadcast.scheduled_at < f.end)
    if f.commune_code:
        commune = select(Area.id).where(Area.level == "commune", Area.code == f.commune_code)
        q = q.where(Broadcast.commune_id.in_(commune.correlate(None)))
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
    total: int | None = None,
) -> list[Broadcast]:
    """The as-run rows; `deliveries=False` when the caller shows broadcasts only, without
    their deliveries and audio (a district's day is thousands of deliveries); `offset` and
    `limit`: one page. Given the `total` (count), a page past the middle is read from the
    end in reverse: an OFFSET costs the rows it skips (a province's year, 8,000 pages)."""
    q = _query(actor, f, deliveries)
    if total is None or limit is None or offset <= total // 2:
        return list(session.scalars(q.offset(offset).limit(limit)))
    end = min(offset + limit, total)
    backwards = q.order_by(None).order_by(*(column.desc() for column in LOG_ORDER))
    found = session.scalars(backwards.offset(total - end).limit(max(end - offset, 0)))
    return list(reversed(found.all()))


def count(session: Session, actor: Actor, f: LogFilter) -> int:
    """How many broadcasts the filter gives `actor` (counted in the database)."""
    q = select(func.count()).select_from(Broadcast)  # count(*): SQLite counts the index
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


# --- export -------------------------------------------------------------------------------

AIRED = (Status.PLAYED, Status.PARTIAL, Status.INTERRUPTED)
EXCEL_1970 = 25569.0  # Excel's serial number of 1970-01-01 (the 1900 date system)
JULIAN_EXCEL = 2415018.5  # the Julian day of Excel's day 0, 1899-12-30 00:00
MS_PER_DAY = 86_400_000
BATCH = 5000  # rows read from the database at once
ZONE_MARGIN = timedelta(days=2)  # started and finished times around the period's own


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[float]:
    """`end - start` in seconds, in SQL."""
    if dialect == "postgresql":
        return cast(extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def whole(dialect: str, value: Any) -> ColumnElement[int]:
    """A number that is not negative rounded to a whole one, as an integer, in SQL
    (SQLite: CAST(x + 0.5 AS INTEGER), what its round(x) does, without the float)."""
    if dialect == "postgresql":
        return cast(func.round(value), BigInteger)
    return cast(value + 0.5, Integer)


def aired_seconds(dialect: str) -> ColumnElement[float]:
    """Seconds on air, in SQL (the query joined to the audio): a broadcast played, played
    in part or cut short, from its start to its finish; without both, the audio's length
    (none if it was cut short)."""
    started, finished = Broadcast.started_at, Broadcast.finished_at
    return case(
        (Broadcast.status.not_in(AIRED), 0.0),
        (
            started.is_not(None) & finished.is_not(None) & (finished > started),
            seconds_between(dialect, started, finished),
        ),
        (Broadcast.status == Status.INTERRUPTED, 0.0),
        else_=AudioAsset.duration_seconds,
    )


def _round(dialect: str, value: ColumnElement[Any], digits: int) -> ColumnElement[float]:
    """`value` rounded in SQL, as a float (PostgreSQL rounds numerics only)."""
    if dialect == "postgresql":
        return cast(func.round(cast(value, Numeric), digits), Float)
    return func.round(value, digits)


def zone_offsets(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The UTC offsets (seconds) of `tz` from `start` to `end`: (since, offset) pairs, the
    first since `start`, then one at each change (summer time, a new rule)."""

    def offset(ts: int) -> int:
        return int((datetime.fromtimestamp(ts, tz).utcoffset() or timedelta()).total_seconds())

    first, last = int(start.timestamp()), int(end.timestamp())
    found = [(first, offset(first))]
    at = first
    while at < last:
        step = min(at + 6 * 3600, last)
        if offset(step) != found[-1][1]:
            lo, hi = at, step  # the change is in (lo, hi]: to the second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == found[-1][1] else (lo, mid)
            found.append((hi, offset(hi)))
        at = step
    return [(datetime.fromtimestamp(ts, UTC), seconds) for ts, seconds in found]


def local_time(
    dialect: str,
    column: Any,
    tz: ZoneInfo,
    offsets: list[tuple[datetime, int]],
    *,
    text: bool,
) -> ColumnElement[Any]:
    """A UTC column as local time in SQL: as text (dd/mm/yyyy hh:mm:ss) or in whole
    milliseconds since Excel's day 0 (1899-12-30 00:00), an integer the sheet writes as a
    serial number (xlsx.serial). PostgreSQL knows the zone by name; SQLite adds `offsets`
    (zone_offsets), chosen by the time where the zone changed in the period."""
    if dialect == "postgresql":
        local = func.timezone(tz.key, column)
        if text:
            return func.to_char(local, "DD/MM/YYYY HH24:MI:SS")
        return whole(dialect, extract("epoch", local) * 1000) + int(EXCEL_1970 * MS_PER_DAY)

    def shift(seconds: int) -> Any:
        return f"{seconds:+d} seconds" if text else seconds * 1000

    later = [(column < offsets[i][0], shift(offsets[i - 1][1])) for i in range(1, len(offsets))]
    by = case(*later, else_=shift(offsets[-1][1])) if later else shift(offsets[0][1])
    if text:
        return func.strftime("%d/%m/%Y %H:%M:%S", column, by)
    # Whole milliseconds (SQLite's precision) since Excel's day 0, then the zone's offset.
    return whole(dialect, (func.julianday(column) - JULIAN_EXCEL) * float(MS_PER_DAY)) + by


def _driver_value(dialect: str, value: Any) -> Any:
    """A query's parameter as the driver takes it: an enum member as its text, a time as
    UTCDateTime stores it."""
    if isinstance(value, datetime) and dialect == "sqlite":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, str):
        return str(value)
    return value


class Memo(dict[Any, Any]):
    """A dict that makes a missing value once, with `make` (labels and names repeat); with
    a `limit`, it keeps that many values at most and makes the others each time asked."""

    def __init__(self, make: Callable[[Any], Any], limit: int | None = None) -> None:
        super().__init__()
        self.make, self.limit = make, limit

    def __missing__(self, key: Any) -> Any:
        value = self.make(key)
        if self.limit is None or len(self) < self.limit:
            self[key] = value
        return value


class ExportRows:
    """A filter's broadcasts in the export's columns, read from the database in batches
    when used (a province's year is 400,000 rows): the database gives local times,
    minutes and reasons; names and labels are looked up once each. Iterated: lists in the
    order of COLUMNS, times as dd/mm/yyyy hh:mm:ss text; `write_rows` writes them as CSV
    and reports.write_xlsx as sheet cells (`batches(text=False)`: times and lengths as
    integers)."""

    def __init__(
        self, session: Session, actor: Actor, f: LogFilter, tz: ZoneInfo, lang: str = "vi"
    ) -> None:
        self.session, self.actor, self.filter, self.tz, self.lang = session, actor, f, tz, lang
        self.dialect = session.get_bind().dialect.name

    def __iter__(self) -> Iterator[list[object]]:
        for batch in self.cells():
            yield from map(list, batch)

    def _offsets(self) -> list[tuple[datetime, int]]:
        """The zone's offsets over the filter's span (its first to last broadcast if open)."""
        start, end = self.filter.start, self.filter.end
        if start is None or end is None:
            span = select(func.min(Broadcast.scheduled_at), func.max(Broadcast.scheduled_at))
            if self.filter.topic:
                span = span.join(Broadcast.bulletin)
            span = restrict(span, self.actor, self.filter)
            first, last = self.session.execute(span).one()
            now = datetime.now(UTC)
            start, end = start or first or now, end or last or now
        return zone_offsets(self.tz, start - ZONE_MARGIN, end + ZONE_MARGIN)

    def query(self, *, text: bool) -> Select[Any]:
        """One row per broadcast, in the log's order. As `text` (the CSV's columns): id,
        commune id, bulletin id, priority, scheduled, status, started, finished (local
        times as text), lateness in seconds, duration and minutes aired, confirmation, who
        confirmed, reason. Otherwise (the sheet's), nothing rounded to decimals in SQL
        (SQLite's round(x, n) goes through text: a third of the query's time): id, commune
        id, bulletin id, priority, scheduled, status, started, finished (local times in
        whole milliseconds since Excel's day 0: local_time), the audio's length and the
        time aired in seconds, confirmation, who confirmed, reason."""
        d = self.dialect
        offsets = [] if d == "postgresql" else self._offsets()

        def local(column: Any) -> ColumnElement[Any]:
            return local_time(d, column, self.tz, offsets, text=text)

        numbers: list[Any]
        if text:
            late = seconds_between(d, Broadcast.scheduled_at, Broadcast.started_at)
            numbers = [
                _round(d, late, 3),
                _round(d, AudioAsset.duration_seconds / 60.0, 2),
                _round(d, aired_seconds(d) / 60.0, 2),
            ]
        else:  # lateness: started - scheduled, in Python
            numbers = [AudioAsset.duration_seconds, aired_seconds(d)]
        q = (
            select(
                Broadcast.id,
                Broadcast.commune_id,
                Broadcast.bulletin_id,
                Broadcast.priority,
                local(Broadcast.scheduled_at),
                Broadcast.status,
                local(Broadcast.started_at),
                local(Broadcast.finished_at),
                *numbers,
                Broadcast.confirmation,
                Broadcast.confirmed_by,
                reason_column(),
            )
            .join(Broadcast.commune)
            .join(Broadcast.audio)
        )
        if self.filter.topic:
            q = q.join(Broadcast.bulletin)
        q = q.order_by(Broadcast.scheduled_at, Area.code, Broadcast.id)
        out: Select[Any] = restrict(q, self.actor, self.filter)
        return out

    def batches(self, *, text: bool) -> Iterator[Sequence[Any]]:
        """The query's rows as plain tuples, BATCH at a time, read with the driver's own
        cursor (PostgreSQL: a server-side one): no result objects for 400,000 rows."""
        conn = self.session.connection()
        sql = self.query(text=text).compile(
            dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
        )
        values = {k: _driver_value(self.dialect, v) for k, v in sql.construct_params().items()}
        params = [values[k] for k in sql.positiontup or ()] if sql.positional else values
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        postgres = self.dialect == "postgresql"
        cursor = dbapi.cursor(name="loa_export") if postgres else dbapi.cursor()
        try:
            cursor.execute(str(sql), params)
            while batch := cursor.fetchmany(BATCH):
                yield batch
        finally:
            cursor.close()

    def communes(self) -> dict[int, tuple[str, str]]:
        """Every area's code and name by id."""
        return {
            i: (code, name)
            for i, code, name in self.session.execute(select(Area.id, Area.code, Area.name))
        }

    def bulletins(self) -> dict[int, tuple[str, str | None, str]]:
        """Every bulletin's title, topic and kind (in the export's language) by id."""
        q = select(Bulletin.id, Bulletin.title, Bulletin.topic, Bulletin.kind)
        return {
            i: (title, topic, label(KIND_VI, kind, self.lang))
            for i, title, topic, kind in self.session.execute(q)
        }

    def labels(self, table: Mapping[str, str], cell: Callable[[str], Any] = str) -> Memo:
        """Coded values to `cell` of their label in the export's language."""
        return Memo(lambda value: cell(label(table, value, self.lang)))

    def actors(self, cell: Callable[[str], Any] = str) -> Memo:
        """Actor ids to `cell` of who they are (a user's name, 'Thiết bị: Cụm 1')."""
        names = user_names(self.session)
        return Memo(lambda actor: cell(actor_name(actor, names, self.lang)))

    def cells(self) -> Iterator[list[tuple[object, ...]]]:
        """Batches of rows in the order of COLUMNS, times as text."""
        communes, bulletins = self.communes(), self.bulletins()
        priority, status = self.labels(PRIORITY_VI), self.labels(STATUS_VI)
        confirmation, reason, actors = (
            self.labels(CONFIRMATION_VI),
            self.labels(REASON_VI),
            self.actors(),
        )
        for batch in self.batches(text=True):
            yield [
                (i, *communes[c], b, *bulletins[b], priority[p], at, status[s], start, end,
                 late, minutes, aired, confirmation[k], actors[who], reason[why])
                for i, c, b, p, at, s, start, end, late, minutes, aired, k, who, why in batch
            ]  # fmt: skip


def export_rows(
    session: Session, actor: Actor, f: LogFilter, tz: ZoneInfo, lang: str = "vi"
) -> ExportRows:
    """The filter's broadcasts in the export's columns, read when used (ExportRows)."""
    return ExportRows(session, actor, f, tz, lang)


def write_rows(
    rows: Iterable[Sequence[object]],
    out: IO[str],
    lang: str = "vi",
    *,
    progress: Callable[[int, int], None] | None = None,
    total: int = 0,
) -> int:
    """Export rows as CSV (headers in `lang`, times dd/mm/yyyy HH:MM:SS); returns the count.
    `progress(rows done, total)` is called every 10,000 rows or so and at the end."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers(lang))
    if isinstance(rows, ExportRows):
        batches: Iterable[Sequence[Sequence[object]]] = rows.cells()
    else:
        batches = _batched(
            ["" if v is None else v.strftime(CSV_TIME) if isinstance(v, datetime) else v
             for v in row]
            for row in rows
        )  # fmt: skip
    done = 0
    for batch in batches:
        writer.writerows(batch)
        if progress and (done + len(batch)) // 10_000 > done // 10_000:
            progress(done + len(batch), total)
        done += len(batch)
    if progress:
        progress(done, total or done)
    return done


def _batched(rows: Iterable[list[object]]) -> Iterator[list[list[object]]]:
    batch: list[list[object]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
