"""/api/v1/reports: the as-run log as CSV or XLSX (?from=&to=&commune=&status=&topic=&lang=)
and the period's DOCX report (?from=&to=&commune=&topic=; default the last full half-year).
Vietnamese unless ?lang=en; an operator gets their own commune only."""

from __future__ import annotations

from flask import Blueprint, Response, request

from scheduler import asrun, reports
from scheduler.errors import InvalidInput
from web.api.common import actor, loa

bp = Blueprint("reports", __name__)


def _download(fmt: str, f: asrun.LogFilter) -> Response:
    who = actor()  # every role may export; reports.build limits an operator to their communes
    lang = request.args.get("lang") or "vi"
    if lang not in ("vi", "en"):
        raise InvalidInput("lang is vi or en", "invalid_language")
    ctx = loa()
    tz, now = ctx.settings.timezone, ctx.now()
    with ctx.transaction() as session:
        report = reports.build(session, who, f, tz, now, lang=lang, export=fmt)
    data = reports.export_bytes(report, fmt, now.astimezone(tz).date(), ctx.settings.report)
    name = reports.filename(report, fmt)
    return Response(
        data,
        mimetype=reports.MIME[fmt],
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )


def _log_filter() -> asrun.LogFilter:
    return asrun.filter_from_query(loa().settings.timezone, request.args)


@bp.get("/reports/broadcasts.csv")
def broadcasts_csv() -> Response:
    return _download("csv", _log_filter())


@bp.get("/reports/broadcasts.xlsx")
def broadcasts_xlsx() -> Response:
    return _download("xlsx", _log_filter())


@bp.get("/reports/report.docx")
def report_docx() -> Response:
    ctx = loa()
    tz = ctx.settings.timezone
    period = reports.parse_period(
        request.args.get("from"), request.args.get("to"), ctx.now().astimezone(tz).date()
    )
    f = reports.period_filter(
        tz, period, request.args.get("commune") or None, request.args.get("topic") or None
    )
    return _download("docx", f)
