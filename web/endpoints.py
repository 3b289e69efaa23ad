"""Endpoints in the panel: device status, and registering an agent (token shown once)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from scheduler import areas, service
from scheduler.errors import LoaError
from scheduler.models import Endpoint, Role
from web.auth import current_actor, login_required
from web.common import flash_error, loa, local

bp = Blueprint("endpoints", __name__, url_prefix="/endpoints")


def _size(n: int | None) -> str:
    return f"{n / 1e9:.1f} GB" if n is not None and n >= 1e8 else (f"{n / 1e6:.0f} MB" if n else "")


def _page(token: str | None = None) -> str:
    ctx = loa()
    actor = current_actor()
    rows: list[dict[str, Any]] = []
    with ctx.transaction() as session:
        q = (
            select(Endpoint)
            .where(Endpoint.active.is_(True))
            .options(joinedload(Endpoint.commune))
            .order_by(Endpoint.commune_id, Endpoint.id)
        )
        if actor.role == Role.OPERATOR:
            q = q.where(Endpoint.commune_id == actor.commune_id)
        for e in session.scalars(q):
            offset = e.clock_offset_seconds
            rows.append(
                {
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
                    "offset": f"{offset:+.2f} s" if offset is not None else "",
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
