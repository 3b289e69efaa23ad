"""Reports of the as-run log for the 6-month and annual reports: counts per commune, topic
and month (scheduled, played, missed, minutes), the missed broadcasts with their reasons,
and the as-run table as CSV and XLSX in Vietnamese (or English). The DOCX is in
scheduler.report_docx."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import IO
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from scheduler import areas, asrun, audit, chain
from scheduler.auth import Actor
from scheduler.errors import Forbidden, InvalidInput
from scheduler.models import Area, Broadcast, Role, Status
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

    def add(self, b: Broadcast) -> None:
        outcome = OUTCOME.get(Status(b.status), "pending")
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome != "cancelled":
            self.scheduled += 1
        self.seconds += asrun.aired_seconds(b)

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
    """Everything the exports and the panel show of one period, read in one transaction."""

    period: Period
    lang: str
    commune: str | None = None  # the one commune reported on (name)
    topic: str | None = None
    total: Tally = field(default_factory=Tally)
    by_commune: dict[str, Tally] = field(default_factory=dict)
    by_topic: dict[str, Tally] = field(default_factory=dict)
    by_month: dict[tuple[int, int], Tally] = field(default_factory=dict)
    by_commune_topic: dict[tuple[str, str], Tally] = field(default_factory=dict)
    missed: list[Missed] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    rows: list[list[object]] = field(default_factory=list)  # asrun.COLUMNS, one per broadcast
    chain_head: tuple[int, str] = (0, "")

    @property
    def empty(self) -> bool:
        return not self.rows


def summarize(
    broadcasts: Iterable[Broadcast],
    report: Report,
    tz: ZoneInfo,
    communes: Iterable[str] = (),
) -> Report:
    """Count the broadcasts into `report`; `communes` (names) are listed even with none."""
    for name in communes:
        report.by_commune.setdefault(name, Tally())
    for month in report.period.months():
        report.by_month.setdefault(month, Tally())
    reasons: Counter[str] = Counter()
    unknown = "không rõ lý do" if report.lang == "vi" else "no reason given"
    for b in broadcasts:
        topic = b.bulletin.topic or NO_TOPIC[report.lang]
        local = b.scheduled_at.astimezone(tz)
        for tally in (
            report.total,
            report.by_commune.setdefault(b.commune.name, Tally()),
            report.by_topic.setdefault(topic, Tally()),
            report.by_month.setdefault((local.year, local.month), Tally()),
            report.by_commune_topic.setdefault((b.commune.name, topic), Tally()),
        ):
            tally.add(b)
        if OUTCOME.get(Status(b.status)) in ("missed", "partial"):
            why = asrun.reason(b, report.lang) or unknown
            reasons[why] += 1
            status = asrun.label(asrun.STATUS_VI, b.status, report.lang)
            missed = Missed(
                local.replace(tzinfo=None), b.commune.name, b.bulletin.title, status, why
            )
            report.missed.append(missed)
    report.reasons = reasons.most_common()
    report.by_topic = dict(sorted(report.by_topic.items()))
    return report


def period_filter(
    tz: ZoneInfo, period: Period, commune: str | None = None, topic: str | None = None
) -> asrun.LogFilter:
    return asrun.make_filter(
        tz, period.start.isoformat(), period.end.isoformat(), commune=commune, topic=topic
    )


def _period_of(f: asrun.LogFilter, found: list[Broadcast], tz: ZoneInfo, now: datetime) -> Period:
    """The local days a filter covers; an open bound: the first or last broadcast's day."""
    days = [b.scheduled_at.astimezone(tz).date() for b in found[:1] + found[-1:]]
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
    is a Vietnamese administrative document whatever `lang` says."""
    lang = "vi" if export == "docx" else lang
    visible = visible_communes(session, actor)
    if f.commune_code:
        area = areas.commune_by_code(session, f.commune_code)
        if area not in visible:
            raise Forbidden(f"{actor.name} may see only their own commune's reports")
        visible = [area]
    found = asrun.query(session, actor, f)
    period = _period_of(f, found, tz, now)
    one = visible[0].name if len(visible) == 1 else None
    report = Report(period, lang, commune=one, topic=f.topic)
    summarize(found, report, tz, [a.name for a in visible])
    report.rows = asrun.export_rows(found, tz, lang)
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
    ("Số phút đã phát", "Minutes aired"),
)
XLSX_TIME = "dd/mm/yyyy hh:mm:ss"


def write_csv(report: Report, out: IO[str]) -> int:
    return asrun.write_rows(report.rows, out, report.lang)


def csv_bytes(report: Report) -> bytes:
    """The CSV with its UTF-8 BOM: Excel then opens Vietnamese correctly."""
    out = io.StringIO()
    write_csv(report, out)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_xlsx(report: Report, out: IO[bytes]) -> None:
    """Two sheets: the as-run log (one row per broadcast, real dates) and the summary per
    commune × topic; each with a frozen, filtered header."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    vi = report.lang == "vi"
    book = Workbook()
    log = book.active
    assert log is not None
    log.title = "Nhật ký phát" if vi else "As-run log"
    log.append(asrun.headers(report.lang))
    times = [i for i, (key, _, _) in enumerate(asrun.COLUMNS) if key in asrun.TIME_COLUMNS]
    for row in report.rows:
        log.append(row)
    for i in times:
        for (cell,) in log.iter_rows(min_row=2, min_col=i + 1, max_col=i + 1):
            cell.number_format = XLSX_TIME
    summary = book.create_sheet("Tổng hợp" if vi else "Summary")
    summary.append([v if vi else e for v, e in SUMMARY_COLUMNS])
    for (name, topic), t in sorted(report.by_commune_topic.items()):
        summary.append(
            [name, topic, t.scheduled, t.played, t.partial, t.missed, t.cancelled, t.minutes]
        )
    widths = {0: 9, 2: 24, 4: 36, 8: 20, 10: 20, 11: 20, 16: 28, 17: 36}
    for sheet in (log, summary):
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = sheet.dimensions
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    for i, width in widths.items():
        log.column_dimensions[get_column_letter(i + 1)].width = width
    summary.column_dimensions["A"].width = 24
    summary.column_dimensions["B"].width = 28
    book.save(out)


def xlsx_bytes(report: Report) -> bytes:
    out = io.BytesIO()
    write_xlsx(report, out)
    return out.getvalue()


def export_bytes(report: Report, fmt: str, issued: date, settings: ReportSettings) -> bytes:
    """The report as a file of `fmt` (the DOCX dated `issued`, signed as in settings)."""
    if fmt == "csv":
        return csv_bytes(report)
    if fmt == "xlsx":
        return xlsx_bytes(report)
    if fmt == "docx":
        from scheduler.report_docx import docx_bytes  # python-docx, matplotlib: when asked

        return docx_bytes(report, settings, issued)
    raise InvalidInput(f"unknown format {fmt!r}; use csv, xlsx or docx", "invalid_format")
