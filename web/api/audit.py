"""/api/v1/audit: who did what (administrators only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from scheduler import asrun, audit
from scheduler.models import AuditEntry
from web.api.common import actor, loa

bp = Blueprint("audit", __name__)


def entry_json(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": asrun.local_iso(e.at, loa().settings.timezone),
        "actor": e.actor,
        "action": e.action,
        "target": e.target,
        "target_id": e.target_id,
        "detail": e.detail,
    }


@bp.get("/audit")
def list_audit() -> Response:
    page = request.args.get("page", "1")
    with loa().transaction() as session:
        rows = audit.entries(
            session,
            actor(),
            who=request.args.get("actor", ""),
            page=int(page) if page.isdigit() else 1,
        )
        return jsonify([entry_json(e) for e in rows])
