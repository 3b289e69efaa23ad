"""The as-run log in the panel, with filters and CSV export."""

from __future__ import annotations

import io

from flask import Blueprint, Response, render_template, request

from scheduler import areas, asrun
from scheduler.errors import LoaError
from scheduler.models import Status
from web.auth import current_actor, login_required
from web.common import broadcast_row, flash_error, loa, local

bp = Blueprint("log", __name__)

FILTER_KEYS = ("from", "to", "commune", "status", "topic")


def _filter() -> asrun.LogFilter:
    return asrun.filter_from_query(loa().settings.timezone, request.args)


@bp.get("/log")
@login_required
def index() -> str:
    ctx = loa()
    rows = []
    with ctx.transaction() as session:
        try:
            found = asrun.query(session, current_actor(), _filter(), deliveries=False)
        except LoaError as exc:
            flash_error(exc)
            found = []
        for b in found:
            row = broadcast_row(b, ctx.now())
            row.update(
                when=local(b.scheduled_at, "%d/%m/%Y %H:%M"),
                commune=b.commune.name,
                topic=b.bulletin.topic,
            )
            rows.append(row)
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
    return render_template(
        "log.html",
        rows=rows,
        communes=communes,
        statuses=[s.value for s in Status],
        args={k: request.args.get(k, "") for k in FILTER_KEYS},
    )


@bp.get("/log.csv")
@login_required
def export_csv() -> Response:
    out = io.StringIO()
    with loa().transaction() as session:
        asrun.write_csv(
            asrun.query(session, current_actor(), _filter()), out, loa().settings.timezone
        )
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=nhat-ky-phat.csv"},
    )
