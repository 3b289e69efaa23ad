"""The as-run log in the panel, with filters and CSV export."""

from __future__ import annotations

import io
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request, url_for
from sqlalchemy import select

from scheduler import asrun
from scheduler.errors import LoaError
from scheduler.models import Area, Status
from web.auth import current_actor, login_required
from web.common import broadcast_row, flash_error, loa, local
from web.i18n import translate

bp = Blueprint("log", __name__)

FILTER_KEYS = ("from", "to", "commune", "status", "topic")
PAGE_SIZE = 100


def _filter() -> asrun.LogFilter:
    return asrun.filter_from_query(loa().settings.timezone, request.args)


@bp.get("/log")
@login_required
def index() -> str:
    ctx = loa()
    rows = []
    args = {k: request.args.get(k, "") for k in FILTER_KEYS}
    if not args["from"] and not args["to"]:  # what aired up to today, on its latest page
        args["to"] = ctx.now().astimezone(ctx.settings.timezone).date().isoformat()
    last = "page" not in request.args
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    with ctx.transaction() as session:
        try:
            f = asrun.filter_from_query(ctx.settings.timezone, args)
            total = asrun.count(session, current_actor(), f)
            pages = max(-(-total // PAGE_SIZE), 1)
            page = pages if last else min(page, pages)
            found = asrun.query(session, current_actor(), f, deliveries=False, total=total,
                                offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)  # fmt: skip
        except LoaError as exc:
            flash_error(exc)
            found, total, pages = [], 0, 1
        for b in found:
            row = broadcast_row(b, ctx.now())
            row.update(
                when=local(b.scheduled_at, "%d/%m/%Y %H:%M"),
                commune=b.commune.name,
                topic=b.bulletin.topic,
            )
            rows.append(row)
        # The filter's 559 choices as plain rows, not Area objects.
        communes = session.execute(
            select(Area.code, Area.name).where(Area.level == "commune").order_by(Area.code)
        ).all()
    return render_template(
        "log.html",
        rows=rows,
        communes=communes,
        # Each status said once, not once a row.
        status_labels={s.value: translate(s.value) for s in Status},
        args=args,
        total=total,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
        links=_page_links(page, pages, {k: v for k, v in args.items() if v}),
    )


def _page_links(page: int, pages: int, args: dict[str, str]) -> list[tuple[str, str | None]]:
    """The pager: (label, URL) with the filter kept; None for the current page and gaps."""

    def link(n: int) -> str:
        return url_for("log.index") + "?" + urlencode({**args, "page": n})

    shown = sorted(
        {1, page - 2, page - 1, page, page + 1, page + 2, pages} & set(range(1, pages + 1))
    )
    out: list[tuple[str, str | None]] = []
    if page > 1:
        out.append(("‹", link(page - 1)))
    for i, n in enumerate(shown):
        if i and n - shown[i - 1] > 1:
            out.append(("…", None))
        out.append((str(n), None if n == page else link(n)))
    if page < pages:
        out.append(("›", link(page + 1)))
    return out if pages > 1 else []


@bp.get("/log.csv")
@login_required
def export_csv() -> Response:
    """The whole filter, not a page."""
    out = io.StringIO()
    ctx = loa()
    with ctx.transaction() as session:
        rows = asrun.export_rows(session, current_actor(), _filter(), ctx.settings.timezone)
        asrun.write_rows(rows, out)
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=nhat-ky-phat.csv"},
    )
