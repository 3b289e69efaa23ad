"""/api/v1 broadcasts: scheduling one now or at a time, the as-run log, confirmation,
cancelling."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from pydantic import AwareDatetime, Field, StrictBool

from scheduler import asrun, service
from scheduler import broadcasts as bc
from scheduler.models import Broadcast
from web.api.common import Body, Id, actor, body, created, loa

bp = Blueprint("broadcasts", __name__)


class BroadcastIn(Body):
    bulletin_id: Id
    communes: list[str] = Field(min_length=1)
    at: AwareDatetime | None = None


class ConfirmIn(Body):
    aired: StrictBool
    reason: str | None = None
    at: AwareDatetime | None = None


def broadcast_json(b: Broadcast) -> dict[str, Any]:
    tz = loa().settings.timezone
    row = asrun.as_run_row(b, tz)
    row["commune_name"] = row["commune"]
    row["commune"] = row.pop("commune_code")
    # Which version aired: the audio this broadcast plays (or played), by its checksum.
    row["audio_sha256"] = b.audio.sha256
    row["audio_url"] = url_for("api.bulletins.audio", sha256=b.audio.sha256)
    row["placement_id"], row["overflow"] = b.placement_id, b.overflow
    row["deliveries"] = [
        {
            "id": d.id,
            "endpoint": d.endpoint.name,
            "kind": d.endpoint.kind,
            "status": d.status,
            "started_at": asrun.local_iso(d.started_at, tz),
            "finished_at": asrun.local_iso(d.finished_at, tz),
            "clock_offset_seconds": d.clock_offset_seconds,
            "error": d.error,
            "attempts": [
                {"at": asrun.local_iso(a.at, tz), "action": a.action, "error": a.error}
                for a in d.attempts
            ],
        }
        for d in b.deliveries
    ]
    return row


@bp.post("/broadcasts")
def create_broadcasts() -> tuple[Response, int]:
    data = body(BroadcastIn)
    made = service.schedule_bulletin(loa(), actor(), data.bulletin_id, data.communes, data.at)
    tz = loa().settings.timezone
    return created(
        [
            {
                "id": b.id,
                "commune": b.commune.code,
                "bulletin_id": b.bulletin_id,
                "scheduled_at": asrun.local_iso(b.scheduled_at, tz),
                "status": b.status,
                "priority": b.priority,
            }
            for b in made
        ]
    )


def _filter() -> asrun.LogFilter:
    return asrun.filter_from_query(loa().settings.timezone, request.args)


@bp.get("/broadcasts")
def list_broadcasts() -> Response:
    f = _filter()
    with loa().transaction() as session:
        return jsonify([broadcast_json(b) for b in asrun.query(session, actor(), f)])


@bp.get("/broadcasts/<int:broadcast_id>")
def get_broadcast(broadcast_id: int) -> Response:
    who = actor()
    tz = loa().settings.timezone
    with loa().transaction() as session:
        b = bc.get_broadcast(session, broadcast_id)
        who.require_commune(b.commune_id)
        payload = broadcast_json(b)
        payload["history"] = [
            {
                "at": asrun.local_iso(e.at, tz),
                "delivery_id": e.delivery_id,
                "from": e.from_status,
                "to": e.to_status,
                "actor": e.actor,
                "reason": e.reason,
            }
            for e in b.events
        ]
        return jsonify(payload)


@bp.post("/broadcasts/<int:broadcast_id>/confirm")
def confirm_broadcast(broadcast_id: int) -> Response:
    data = body(ConfirmIn)
    ctx = loa()
    service.confirm_broadcast(ctx, actor(), broadcast_id, data.aired, data.reason, data.at)
    with ctx.transaction() as session:
        return jsonify(broadcast_json(bc.get_broadcast(session, broadcast_id)))


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def cancel_broadcast(broadcast_id: int) -> Response:
    ctx = loa()
    service.cancel_broadcast(ctx, actor(), broadcast_id)
    with ctx.transaction() as session:
        return jsonify(broadcast_json(bc.get_broadcast(session, broadcast_id)))


BODIES = (BroadcastIn, ConfirmIn)
