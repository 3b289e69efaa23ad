"""The audit log in the panel, for the administrator."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from scheduler import audit
from scheduler.errors import Forbidden
from web.auth import current_actor, login_required
from web.common import actor_label, loa, local

bp = Blueprint("audit", __name__)


@bp.get("/audit")
@login_required
def index() -> str:
    page = request.args.get("page", "1")
    number = int(page) if page.isdigit() and int(page) > 0 else 1
    who = request.args.get("actor", "").strip()
    with loa().transaction() as session:
        try:
            found = audit.entries(session, current_actor(), who=who, page=number)
        except Forbidden:
            abort(403)
        rows = [
            {
                "at": local(e.at, "%d/%m/%Y %H:%M:%S"),
                "actor": actor_label(e.actor),
                "action": e.action,
                "target": f"{e.target} {e.target_id}" if e.target_id else e.target,
                "detail": e.detail or "",
            }
            for e in found
        ]
    return render_template(
        "audit.html", rows=rows, who=who, page=number, more=len(rows) == audit.PAGE
    )
