"""Reports of the as-run log for the 6-month and annual reports: counts per commune, topic
and month (scheduled, played, missed, minutes), the missed broadcasts with their reasons,
and the as-run table as CSV and XLSX in Vietnamese (or English). The DOCX is in
scheduler.report_docx."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from operator import itemgetter
from threading import Thread
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Connection,
    Engine,
    case,
    func,
    select,
)
from sqlalchemy.orm import Session

from scheduler import areas, asrun, audit, chain, xlsx
from scheduler.auth import Actor
from scheduler.errors import Forbidden, InvalidInput
from scheduler.models import Area, Broadcast, Bulletin, Role, Status
from scheduler.settings import ReportSettings

FORMATS = ("csv", "xlsx", "docx")
MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
# Which column of the totals a broadcast's status counts in.
OUTCOME = {
    Status.PLAYED: "played",
    Status.PARTIAL: "partial",
    Status.INTERRUPTED: "partial",  # cut short by an emergency: it aired in part
    Status.MISSED: "missed",
    Status.FAILED: "missed",
    Status.CANCELLED: "cancelled",
}  # any other status: not over yet ("pending")
AIRED = asrun.AIRED  # statuses whose broadcasts went on air, in whole or part
MISSED_LIMIT = 50  # rows of the missed list kept (the DOCX table); the rest is counted
NO_TOPIC = {"vi": "(không ghi chủ đề)", "en": "(no topic)"}
# Topic codes spelled out in the report's subject line.
TOPIC_NAMES = {"CCHC": "tuyên truyền cải cách hành chính"}


# --- periods ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # included

    @property
    def slug(self) -> str:
        return f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"

    def months(self) -> list[tuple[int, int]]:
        out, (y, m) = [], (self.start.year, self.start.month)
        while (y, m) <= (self.end.year, self.end.month):
            out.append((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


def half_year(year: int, half: int) -> Period:
    if half == 1:
        return Period(date(year, 1, 1), date(year, 6, 30))
    return Period(date(year, 7, 1), date(year, 12, 31))


def whole_year(year: int) -> Period:
    return Period(date(year, 1, 1), date(year, 12, 31))


def last_full_half_year(today: date) -> Period:
    """The last half-year that has ended: in July–December, January–June of this year."""
    return half_year(today.year, 1) if today.month >= 7 else half_year(today.year - 1, 2)


def parse_period(start: str | None, end: str | None, today: date) -> Period:
    """'YYYY-MM-DD' bounds, both included; none given: the last full half-year."""
    if not start and not end:
        return last_full_half_year(today)
    try:
        first = date.fromisoformat(start) if start else date(today.year, 1, 1)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        raise InvalidInput("dates are written YYYY-MM-DD", "invalid_time") from None
    if last < first:
        raise InvalidInput("the period ends before it starts", "invalid_period")
    return Period(first, last)


def vi_date(day: date) -> str:
    """'ngày 27 tháng 11 năm 2026'; days below 10 and months 1, 2 take a leading zero
    (Nghị định 30/2020, Phụ lục I)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


# --- counting -----------------------------------------------------------------------------


@dataclass
class Tally:
    scheduled: int = 0  # everything not cancelled
    played: int = 0
    partial: int = 0
    missed: int = 0  # missed or failed: not aired
    cancelled: int = 0
    pending: int = 0  # not over yet
    seconds: float = 0.0  # on air

    def add(self, status: str, n: int = 1, seconds: float = 0.0) -> None:
        """`n` broadcasts of `status`, `seconds` on air in all."""
        outcome = OUTCOME.get(Status(status), "pending")
        setattr(self, outcome, getattr(self, outcome) + n)
        if outcome != "cancelled":
            self.scheduled += n
        self.seconds += seconds

    def merge(self, other: Tally) -> None:
        """Add `other`'s counts and time on air to these."""
        self.scheduled += other.scheduled
        self.played += other.played
        self.partial += other.partial
        self.missed += other.missed
        self.cancelled += other.cancelled
        self.pending += other.pending
        self.seconds += other.seconds

    @property
    def minutes(self) -> float:
        return round(self.seconds / 60, 1)


@dataclass(frozen=True)
class Missed:
    when: datetime  # local
    commune: str
    title: str
    status: str  # in the report's language
    reason: str


@dataclass
class Report:
    """Everything the exports and the panel show of one period: the counts read in one
    transaction, the rows (a Rows) read when exported."""

    period: Period
    lang: str
    commune: str | None = None  # the one commune reported on (name)
    topic: str | None = None
    total: Tally = field(default_factory=Tally)
    by_commune: dict[str, Tally] = field(default_factory=dict)
    by_topic: dict[str, Tally] = field(default_factory=dict)
    by_month: dict[tuple[int, int], Tally] = field(default_factory=dict)
    by_commune_topic: dict[tuple[str, str], Tally] = field(default_factory=dict)
    missed: list[Missed] = field(default_factory=list)  # the first MISSED_LIMIT
    reasons: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    rows: Rows | list[list[object]] = field(default_factory=list)  # asrun.COLUMNS, one each
    chain_head: tuple[int, str] = (0, "")

    @property
    def empty(self) -> bool:
        return not self.rows

    @property
    def not_aired(self) -> int:
        """Broadcasts missed or aired in part: the length of the whole missed list."""
        return self.total.missed + self.total.partial


class Rows:
    """A report's export rows, read from the database when exported, in a transaction of
    their own (the report is built in one, exported after it); `len` is the count."""

    def __init__(
        self,
        bind: Engine | Connection,
        actor: Actor,
        f: asrun.LogFilter,
        tz: ZoneInfo,
        lang: str,
        count: int,
    ) -> None:
        self.bind, self.actor, self.filter, self.tz, self.lang = bind, actor, f, tz, lang
        self.count = count

    def __len__(self) -> int:
        return self.count

    @contextmanager
    def read(self) -> Iterator[asrun.ExportRows]:
        with Session(self.bind) as session, session.begin():
            yield asrun.export_rows(session, self.actor, self.filter, self.tz, self.lang)

    def __iter__(self) -> Iterator[list[object]]:
        if not self.count:
            return
        with self.read() as rows:
            yield from rows


COUNTING_CONNECTIONS = 2


def _rows(bind: Any, query: Any) -> list[Any]:
    """A query's rows, read on a connection of its own."""
    with Session(bind) as session:
        return list(session.execute(query))


def count(
    session: Session,
    actor: Actor,
    f: asrun.LogFilter,
    report: Report,
    tz: ZoneInfo,
    communes: Iterable[str] = (),
) -> Report:
    """Count the filter's broadcasts into `report` in the database (per commune, topic,
    month and status); `communes` (names) are listed even with none. The missed list
    keeps the first MISSED_LIMIT; the reasons count them all."""
    for name in communes:
        report.by_commune.setdefault(name, Tally())
    months = report.period.months()
    for month in months:
        report.by_month.setdefault(month, Tally())
    dialect = session.get_bind().dialect.name
    outcomes = ("played", "partial", "missed", "cancelled")
    # By commune id, not name: no join to the communes, and a sort on numbers.
    names = {i: name for i, name in session.execute(select(Area.id, Area.name))}
    q = select(
        Broadcast.commune_id,
        Bulletin.topic,
        func.count(),
        *(
            func.sum(case((Broadcast.status.in_([s for s in OUTCOME if OUTCOME[s] == o]), 1),
                          else_=0))
            for o in outcomes
        ),
        func.sum(asrun.aired_seconds(dialect)),
    )  # fmt: skip
    q = q.join(Broadcast.bulletin).join(Broadcast.audio)
    q = q.group_by(Broadcast.commune_id, Bulletin.topic)
    # A query per local month of the period (which covers the filter's times): SQLite sorts
    # a month's rows at a time, about 30 % less time in all than a year's rows at once.
    starts = [datetime(y, m, 1, tzinfo=tz) for y, m in months]
    queries = [
        asrun.restrict(q, actor, replace(
            f, start=f.start if i == 0 else starts[i],
            end=f.end if i + 1 == len(months) else starts[i + 1],
        ))
        for i in range(len(months))
    ]  # fmt: skip
    why = asrun.reason_column().label("why")
    missed = Broadcast.status.in_(asrun.NOT_AIRED)  # the missed list
    by_reason = select(why, func.count()).join(Broadcast.commune).join(Broadcast.bulletin)
    by_reason = asrun.restrict(by_reason, actor, f).where(missed).group_by(why)
    first = select(Broadcast.scheduled_at, Area.name, Bulletin.title, Broadcast.status, why)
    first = asrun.restrict(first.join(Broadcast.commune).join(Broadcast.bulletin), actor, f)
    first = first.where(missed).order_by(*asrun.LOG_ORDER)
    # Two queries at a time, each on its own connection: the database lets go of the GIL
    # while it counts, so a year's counts take both cores.
    bind = session.get_bind()
    with ThreadPoolExecutor(COUNTING_CONNECTIONS, thread_name_prefix="counts") as pool:
        found = list(
            pool.map(lambda q: _rows(bind, q), [by_reason, *queries, first.limit(MISSED_LIMIT)])
        )
    reason_rows, counted, first_rows = found[0], found[1:-1], found[-1]
    for month, rows in zip(months, counted, strict=True):
        for commune, topic, n, played, partial, failed, cancelled, seconds in rows:
            name, topic = names[commune], topic or NO_TOPIC[report.lang]
            over = played + partial + failed + cancelled
            tally = Tally(n - cancelled, played, partial, failed, cancelled, n - over,
                          float(seconds or 0))  # fmt: skip
            report.by_commune_topic.setdefault((name, topic), Tally()).merge(tally)
            report.by_month[month].merge(tally)
    for (name, topic), tally in report.by_commune_topic.items():
        for total in (
            report.total,
            report.by_commune.setdefault(name, Tally()),
            report.by_topic.setdefault(topic, Tally()),
        ):
            total.merge(tally)
    report.by_topic = dict(sorted(report.by_topic.items()))

    unknown = "không rõ lý do" if report.lang == "vi" else "no reason given"
    reasons: Counter[str] = Counter()
    for text, n in reason_rows:
        reasons[asrun.label(asrun.REASON_VI, text, report.lang) or unknown] += n
    report.reasons = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    for at, name, title, status, text in first_rows:
        report.missed.append(Missed(
            at.astimezone(tz).replace(tzinfo=None), name, title,
            asrun.label(asrun.STATUS_VI, status, report.lang),
            asrun.label(asrun.REASON_VI, text, report.lang) or unknown,
        ))  # fmt: skip
    return report


def period_filter(
    tz: ZoneInfo, period: Period, commune: str | None = None, topic: str | None = None
) -> asrun.LogFilter:
    return asrun.make_filter(
        tz, period.start.isoformat(), period.end.isoformat(), commune=commune, topic=topic
    )


def _period_of(
    f: asrun.LogFilter, first: datetime | None, last: datetime | None, tz: ZoneInfo, now: datetime
) -> Period:
    """The local days a filter covers; an open bound: the first or last broadcast's day."""
    days = [at.astimezone(tz).date() for at in (first, last) if at is not None]
    today = now.astimezone(tz).date()
    start = f.start.astimezone(tz).date() if f.start else days[0] if days else today
    end = (f.end - timedelta(microseconds=1)).astimezone(tz).date() if f.end else None
    return Period(start, end or (days[-1] if days else max(start, today)))


def visible_communes(session: Session, actor: Actor) -> list[Area]:
    """The communes whose reports `actor` may see: an operator's own, else all."""
    found = areas.communes(session)
    if actor.role == Role.OPERATOR:
        return [a for a in found if a.id in actor.communes]
    return found


def _import_docx_writer() -> None:
    """Import python-docx and matplotlib (a second) while the database counts (SQLite lets
    go of the GIL as it steps): the DOCX is written right after."""
    with suppress(ImportError):
        import matplotlib.backends.backend_agg
        import matplotlib.figure  # noqa: F401

        import scheduler.report_docx  # noqa: F401


def build(
    session: Session,
    actor: Actor,
    f: asrun.LogFilter,
    tz: ZoneInfo,
    now: datetime,
    *,
    lang: str = "vi",
    export: str | None = None,
) -> Report:
    """The report of a filter's broadcasts as `actor` may see them (an operator: their
    commune only); `export` (csv, xlsx, docx) records the export in the audit log. A DOCX
    is a Vietnamese administrative document whatever `lang` says. A CSV or XLSX export
    counts its rows only: its totals are left empty (the XLSX sums its summary as it writes
    the rows)."""
    lang = "vi" if export == "docx" else lang
    if export == "docx":
        Thread(target=_import_docx_writer, name="docx-imports", daemon=True).start()
    visible = visible_communes(session, actor)
    if f.commune_code:
        area = areas.commune_by_code(session, f.commune_code)
        if area not in visible:
            raise Forbidden(f"{actor.name} may see only their own commune's reports")
        visible = [area]
    span = select(func.min(Broadcast.scheduled_at), func.max(Broadcast.scheduled_at))
    if f.topic:  # else the index on the time answers alone
        span = span.join(Broadcast.bulletin)
    span = asrun.restrict(span, actor, f)
    first: datetime | None
    last: datetime | None
    first, last = session.execute(span).one()
    period = _period_of(f, first, last, tz, now)
    one = visible[0].name if len(visible) == 1 else None
    report = Report(period, lang, commune=one, topic=f.topic)
    if export in ("csv", "xlsx"):  # the rows alone: the XLSX totals its summary from them
        total = asrun.count(session, actor, f)
    else:
        count(session, actor, f, report, tz, [a.name for a in visible])
        total = report.total.scheduled + report.total.cancelled
    report.rows = Rows(session.get_bind(), actor, f, tz, lang, total)
    report.chain_head = chain.head(session)
    if export:
        where = f" commune {f.commune_code}" if f.commune_code else ""
        detail = f"{export} {period.start}..{period.end}{where}"
        audit.record(session, actor, "export", "report", now, detail)
    return report


def filename(report: Report, fmt: str) -> str:
    stem = "bao-cao" if fmt == "docx" else "nhat-ky-phat"
    return f"{stem}-{report.period.slug}.{fmt}"


# --- CSV and XLSX -------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    ("Xã", "Commune"),
    ("Chủ đề", "Topic"),
    ("Theo lịch", "Scheduled"),
    ("Đã phát", "Played"),
    ("Phát một phần", "Partly played"),
    ("Không phát", "Not aired"),
    ("Đã hủy", "Cancelled"),
    ("Chưa có kết quả", "Pending"),  # not over yet: the rest of "scheduled"
    ("Số phút đã phát", "Minutes aired"),
)
XLSX_TIME = "dd/mm/yyyy hh:mm:ss"


Progress = Callable[[int, int], None]


def write_csv(report: Report, out: IO[str], progress: Progress | None = None) -> int:
    total = len(report.rows)
    if isinstance(report.rows, Rows):
        with report.rows.read() as rows:
            return asrun.write_rows(rows, out, report.lang, progress=progress, total=total)
    return asrun.write_rows(report.rows, out, report.lang, progress=progress, total=total)


def csv_bytes(report: Report, progress: Progress | None = None) -> bytes:
    """The CSV with its UTF-8 BOM: Excel then opens Vietnamese correctly."""
    out = io.StringIO()
    write_csv(report, out, progress)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def log_chunks(
    rows: asrun.ExportRows,
    strings: xlsx.Strings,
    total: int,
    progress: Progress | None = None,
    totals: RowTotals | None = None,
) -> Iterator[tuple[str, int]]:
    """The as-run sheet's rows as XML, a batch at a time: the database gives times in
    milliseconds and lengths in seconds, unrounded (ExportRows.query); each commune,
    bulletin, label and name is made into cells once, its strings shared, and each time,
    lateness and length once while they repeat. `totals` adds up the rows as they go."""
    cell = strings.cell
    communes = {i: cell(code) + cell(name) for i, (code, name) in rows.communes().items()}
    bulletins = {
        i: f"<c><v>{i}</v></c>{cell(title)}{cell(topic)}{cell(kind)}"
        for i, (title, topic, kind) in rows.bulletins().items()
    }
    priority, status = rows.labels(asrun.PRIORITY_VI, cell), rows.labels(asrun.STATUS_VI, cell)
    confirmation = rows.labels(asrun.CONFIRMATION_VI, cell)
    reason, actors = rows.labels(asrun.REASON_VI, cell), rows.actors(cell)
    # Times repeat (a slot in every commune; a second of the day in many), and so do
    # lateness and minutes: each is formatted once, up to a bound on what is kept.
    when = asrun.Memo(lambda ms: f'<c s="{xlsx.TIME}"><v>{xlsx.serial(ms)}</v></c>', LIMIT)
    late = asrun.Memo(lambda ms: f"<c><v>{ms / 1000!r}</v></c>", LIMIT)
    minutes = asrun.Memo(
        lambda s: "<c/>" if s is None else f"<c><v>{in_minutes(s)!r}</v></c>", LIMIT
    )
    done = 0
    for batch in rows.batches(text=False):
        chunk = "".join([
            f"<row><c><v>{i}</v></c>{communes[c]}{bulletins[b]}{priority[p]}{when[at]}"
            f"{status[s]}{'<c/>' if start is None else when[start]}"
            f"{'<c/>' if end is None else when[end]}"
            f"{'<c/>' if start is None else late[start - at]}"
            f"{minutes[seconds]}{minutes[aired]}{confirmation[k]}{actors[who]}{reason[why]}</row>"
            for i, c, b, p, at, s, start, end, seconds, aired, k, who, why in batch
        ])  # fmt: skip
        if totals is not None:
            totals.add(batch)
        if progress and (done + len(batch)) // 10_000 > done // 10_000:
            progress(done + len(batch), total)
        done += len(batch)
        yield chunk, len(batch)
    if progress:
        progress(done, total)


# Cells kept per kind of number (~15 MB at most): a province's year to the second has ~51,000
# distinct times, lateness and minutes a few dozen each; times to the millisecond are each new.
LIMIT = 100_000


def in_minutes(seconds: float) -> float:
    """Seconds in minutes to the hundredth, as SQL rounds them in the CSV: whole milliseconds
    exactly, half up (a 7.5 s audio: 0.13 minutes), others to the nearest."""
    ms = round(seconds * 1000)
    if abs(seconds * 1000 - ms) < 1e-6:
        return (ms + 300) // 600 / 100
    return round(seconds / 60, 2)


def summary_rows(by_commune_topic: dict[tuple[str, str], Tally]) -> list[list[object]]:
    """The summary sheet's rows: one per commune and topic, in their order; minutes to the
    hundredth (a column's sum is then the period's, to the minute)."""
    return [
        [name, topic, t.scheduled, t.played, t.partial, t.missed, t.cancelled, t.pending,
         round(t.seconds / 60, 2)]
        for (name, topic), t in sorted(by_commune_topic.items())
    ]  # fmt: skip


@dataclass
class RowTotals:
    """What the summary needs of the as-run rows: how many per (commune id, bulletin id,
    status), counted in C, and the seconds on air per (commune id, bulletin id)."""

    counts: Counter[tuple[int, int, str]] = field(default_factory=Counter)
    seconds: defaultdict[tuple[int, int], float] = field(default_factory=lambda: defaultdict(float))

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """A batch of rows of ExportRows.batches(text=False)."""
        self.counts.update(map(COUNTED, rows))
        seconds = self.seconds
        for row in rows:
            if row[9]:
                seconds[row[1], row[2]] += row[9]


COUNTED = itemgetter(1, 2, 5)  # of an as-run row: commune, bulletin, status


def _summary_of(rows: asrun.ExportRows, totals: RowTotals) -> Iterator[list[object]]:
    """The summary of the totals log_chunks added up, once they are (the summary sheet is
    written after the log's)."""
    communes, bulletins = rows.communes(), rows.bulletins()
    by_commune_topic: dict[tuple[str, str], Tally] = defaultdict(Tally)

    def key(commune: int, bulletin: int) -> tuple[str, str]:
        return communes[commune][1], bulletins[bulletin][1] or NO_TOPIC[rows.lang]

    for (c, b, status), n in totals.counts.items():
        by_commune_topic[key(c, b)].add(status, n)
    for (c, b), seconds in totals.seconds.items():
        by_commune_topic[key(c, b)].seconds += seconds
    yield from summary_rows(by_commune_topic)


def write_xlsx(report: Report, out: IO[bytes], progress: Progress | None = None) -> int:
    """Two sheets, each with a frozen, filtered header: the as-run log (one row per
    broadcast, real dates) streamed from the database to the file, and the summary per
    commune × topic, totalled from the rows as they are written (or the report's counts
    if its rows are a list). Returns the broadcasts written."""
    vi = report.lang == "vi"
    summary = xlsx.Sheet(
        "Tổng hợp" if vi else "Summary",
        [v if vi else e for v, e in SUMMARY_COLUMNS],
        summary_rows(report.by_commune_topic),
        {0: 24, 1: 28},
    )
    log = xlsx.Sheet(
        "Nhật ký phát" if vi else "As-run log",
        asrun.headers(report.lang),
        report.rows,
        {0: 9, 2: 24, 4: 36, 8: 20, 10: 20, 11: 20, 16: 28, 17: 36},
    )
    if not isinstance(report.rows, Rows):
        return xlsx.write(out, [log, summary], XLSX_TIME)[0]
    total = len(report.rows)
    totals = RowTotals()
    with report.rows.read() as rows:
        log.chunks = lambda strings: log_chunks(rows, strings, total, progress, totals)
        summary.rows = _summary_of(rows, totals)
        return xlsx.write(out, [log, summary], XLSX_TIME)[0]


def xlsx_bytes(report: Report, progress: Progress | None = None) -> bytes:
    out = io.BytesIO()
    write_xlsx(report, out, progress)
    return out.getvalue()


def export_bytes(
    report: Report,
    fmt: str,
    issued: date,
    settings: ReportSettings,
    *,
    progress: Progress | None = None,
) -> bytes:
    """The report as a file of `fmt` (the DOCX dated `issued`, signed as in settings).
    `progress(done, total)`: for the CSV and XLSX, rows written (every 10,000 or so, and
    at the end); for the DOCX, its stages."""
    if fmt == "csv":
        return csv_bytes(report, progress)
    if fmt == "xlsx":
        return xlsx_bytes(report, progress)
    if fmt == "docx":
        from scheduler.report_docx import docx_bytes  # python-docx, matplotlib: when asked

        return docx_bytes(report, settings, issued, progress)
    raise InvalidInput(f"unknown format {fmt!r}; use csv, xlsx or docx", "invalid_format")
