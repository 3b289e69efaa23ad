"""Endpoints in the panel: device status, and registering an agent (token shown once)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select

from scheduler import areas, service
from scheduler.errors import LoaError
from scheduler.models import Endpoint, Role
from web.auth import current_actor, login_required
from web.common import flash_error, loa, local

bp = Blueprint("endpoints", __name__, url_prefix="/endpoints")

ONLINE_WITHIN = timedelta(minutes=2)  # agents long-poll at least every 30 s


def _page(token: str | None = None) -> str:
    ctx = loa()
    actor = current_actor()
    now = ctx.now()
    rows: list[dict[str, Any]] = []
    with ctx.transaction() as session:
        q = select(Endpoint).where(Endpoint.active.is_(True)).order_by(Endpoint.commune_id)
        if actor.role == Role.OPERATOR:
            q = q.where(Endpoint.commune_id == actor.commune_id)
        for e in session.scalars(q):
            seen = e.last_seen_at
            online = e.kind == "virtual" or (seen is not None and now - seen < ONLINE_WITHIN)
            rows.append(
                {
                    "commune": e.commune.name,
                    "name": e.name,
                    "kind": e.kind,
                    "last_seen": local(seen, "%d/%m/%Y %H:%M:%S") if seen else "",
                    "online": online,
                }
            )
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
    return render_template(
        "endpoints.html",
        rows=rows,
        communes=communes,
        token=token,
        may_create=actor.role in (Role.ADMIN, Role.CENTRE),
    )


@bp.get("")
@login_required
def index() -> str:
    return _page()


@bp.post("")
@login_required
def create() -> str:
    form = request.form
    try:
        _, token = service.create_endpoint(
            loa(), current_actor(), form.get("commune", ""), form.get("name", ""), "agent"
        )
    except LoaError as exc:
        flash_error(exc)
        return _page()
    return _page(token)
