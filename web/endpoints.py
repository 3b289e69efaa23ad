"""Endpoints in the panel: device status, and registering an agent (token shown once)."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import joinedload
from werkzeug.wrappers import Response

from scheduler import areas, service
from scheduler.errors import LoaError
from scheduler.models import Area, Endpoint, Role
from web.auth import current_actor, login_required
from web.common import flash_error, loa, local
from web.i18n import number, seconds, translate

bp = Blueprint("endpoints", __name__, url_prefix="/endpoints")

STATES = ("up", "late", "down")  # scheduler.health's states, in the order the counts show
PAGE_SIZE = 100


def _size(n: int | None) -> str:
    if not n:
        return ""
    return f"{number(n / 1e9, 1)} GB" if n >= 1e8 else f"{number(n / 1e6)} MB"


def _page(token: str | None = None) -> str:
    """One page of the active endpoints, problems first (down, then late), filtered by
    commune and state, with the count per state above it."""
    ctx = loa()
    actor = current_actor()
    # An operator sees their own commune only, whatever the query asks.
    commune = request.args.get("commune", "") if actor.role != Role.OPERATOR else ""
    state = request.args.get("state", "")
    state = state if state in STATES else ""
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 1
    rows: list[dict[str, Any]] = []
    with ctx.transaction() as session:
        scope: list[ColumnElement[bool]] = [Endpoint.active.is_(True)]
        if actor.role == Role.OPERATOR:
            scope.append(Endpoint.commune_id.in_(actor.communes))
        if commune:
            code = select(Area.id).where(Area.level == "commune", Area.code == commune)
            scope.append(Endpoint.commune_id == code.scalar_subquery())
        counted = session.execute(
            select(Endpoint.state, func.count()).where(*scope).group_by(Endpoint.state)
        )
        counts = {s: 0 for s in STATES} | {s: n for s, n in counted}
        if state:
            scope.append(Endpoint.state == state)
        total = counts[state] if state else sum(counts.values())
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(page, pages)
        problems_first = case({"down": 0, "late": 1}, value=Endpoint.state, else_=2)
        q = (
            select(Endpoint)
            .where(*scope)
            .options(joinedload(Endpoint.commune))
            .order_by(problems_first, Endpoint.commune_id, Endpoint.id)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
        for e in session.scalars(q):
            offset = e.clock_offset_seconds
            rows.append(
                {
                    "id": e.id,
                    "commune": e.commune.name,
                    "name": e.name,
                    "kind": e.kind,
                    "address": service.public_address(e.address) or "",
                    "state": e.state,
                    # Simulated and operator-confirmed endpoints have no device to be online.
                    "label": {"virtual": "virtual speaker", "manual": "operator confirms"}.get(
                        e.kind
                    ),
                    "since": local(e.state_since, "%H:%M %d/%m") if e.state_since else "",
                    "last_seen": local(e.last_seen_at, "%d/%m/%Y %H:%M:%S"),
                    "version": e.agent_version or "",
                    "offset": ("+" if offset >= 0 else "") + seconds(offset, 2)
                    if offset is not None
                    else "",
                    "free": _size(e.cache_free_bytes),
                    "missing": e.missing_audio or 0,
                    "cache_error": e.cache_error or "",
                }
            )
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
    return render_template(
        "endpoints.html",
        rows=rows,
        communes=communes,
        kinds=service.ENDPOINT_KINDS,
        token=token,
        may_create=actor.role in (Role.ADMIN, Role.CENTRE),
        may_filter_commune=actor.role != Role.OPERATOR,
        states=STATES,
        counts=counts,
        commune=commune,
        state=state,
        page=page,
        pages=pages,
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
            loa(),
            current_actor(),
            form.get("commune", ""),
            form.get("name", ""),
            form.get("kind", "agent"),
            form.get("address"),
        )
    except LoaError as exc:
        flash_error(exc)
        return _page()
    return _page(token)


@bp.post("/<int:endpoint_id>/remove")
@login_required
def remove(endpoint_id: int) -> Response:
    try:
        _, cancelled = service.retire_endpoint(loa(), current_actor(), endpoint_id)
        flash(translate("Device removed: {n} broadcasts not played yet were cancelled there.")
              .format(n=cancelled), "ok")  # fmt: skip
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("endpoints.index"))
