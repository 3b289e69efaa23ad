"""The reports page: a period's totals and charts (by month, commune, topic; played vs
missed) as CSS bars, and its downloads as CSV, XLSX and DOCX: the page's buttons export in
a background job (a year's log is long); a plain GET downloads at once. An operator sees
only their commune."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from scheduler import jobs, reports
from scheduler.errors import Forbidden, LoaError
from scheduler.reports import Period, Tally
from web.auth import current_actor, login_required
from web.common import flash_error, loa
from web.i18n import language
from web.jobs import start

bp = Blueprint("reports", __name__)


def _today() -> date:
    ctx = loa()
    return ctx.now().astimezone(ctx.settings.timezone).date()


def _period() -> Period:
    return reports.parse_period(request.args.get("from"), request.args.get("to"), _today())


def _build(period: Period, export: str | None = None) -> reports.Report:
    ctx = loa()
    tz = ctx.settings.timezone
    f = reports.period_filter(
        tz, period, request.args.get("commune") or None, request.args.get("topic") or None
    )
    with ctx.transaction() as session:
        return reports.build(
            session, current_actor(), f, tz, ctx.now(), lang=language(), export=export
        )


def bars(tallies: dict[Any, Tally], label: Any = str) -> list[dict[str, Any]]:
    """Rows of a bar chart: played, partial and missed as shares of the longest bar."""
    top = max((t.scheduled for t in tallies.values()), default=0) or 1
    return [
        {
            "label": label(key),
            "tally": t,
            "played": 100 * t.played / top,
            "partial": 100 * t.partial / top,
            "missed": 100 * t.missed / top,
        }
        for key, t in tallies.items()
    ]


def presets(today: date) -> list[tuple[str, int, Period]]:
    """The half-years and years a report is usually made for, most recent first."""
    out = []
    for year in (today.year, today.year - 1):
        for name, period in (
            ("Second half of", reports.half_year(year, 2)),
            ("First half of", reports.half_year(year, 1)),
            ("Whole year", reports.whole_year(year)),
        ):
            if period.start <= today:
                out.append((name, year, period))
    return out


@bp.get("/reports")
@login_required
def index() -> str:
    try:
        period = _period()
        report = _build(period)
    except LoaError as exc:
        flash_error(exc)
        period = reports.last_full_half_year(_today())
        report = reports.Report(period, language())
    args = {k: request.args.get(k, "") for k in ("commune", "topic")}
    args.update({"from": period.start.isoformat(), "to": period.end.isoformat()})
    with loa().transaction() as session:
        communes = [
            {"code": a.code, "name": a.name}
            for a in reports.visible_communes(session, current_actor())
        ]
    return render_template(
        "reports.html",
        report=report,
        total=report.total,
        args=args,
        communes=communes,
        presets=presets(_today()),
        months=bars(report.by_month, lambda m: f"{m[1]:02d}/{m[0]}"),
        by_commune=bars(report.by_commune),
        by_topic=bars(report.by_topic),
        overall=bars({"": report.total})[0],
    )


@bp.get("/reports/download.<fmt>")
@login_required
def download(fmt: str) -> Response:
    if fmt not in reports.FORMATS:
        abort(404)
    try:
        report = _build(_period(), export=fmt)
    except Forbidden:
        abort(403)
    except LoaError:
        abort(400)
    data = reports.export_bytes(report, fmt, _today(), loa().settings.report)
    return Response(
        data,
        mimetype=reports.MIME[fmt],
        headers={"Content-Disposition": f"attachment; filename={reports.filename(report, fmt)}"},
    )


@bp.post("/reports/download.<fmt>")
@login_required
def export(fmt: str) -> BaseResponse:
    """Start exporting the period in the background, and show the job's progress."""
    if fmt not in reports.FORMATS:
        abort(404)
    try:
        period = _period()
    except LoaError:
        abort(400)
    commune = request.args.get("commune") or None
    if commune is not None:
        with loa().transaction() as session:
            visible = reports.visible_communes(session, current_actor())
            if commune not in (a.code for a in visible):
                abort(403)
    params = {
        "format": fmt,
        "from": period.start.isoformat(),
        "to": period.end.isoformat(),
        "commune": commune,
        "topic": request.args.get("topic") or None,
        "lang": language(),
        "issued": _today().isoformat(),
    }
    return start(jobs.EXPORT, params)
