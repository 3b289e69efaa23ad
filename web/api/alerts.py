"""/api/v1 alerts: CAP 1.2 documents from warning centres (scheduler/cap.py does the work)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from scheduler import cap
from web.api.common import actor, error, loa

bp = Blueprint("alerts", __name__)

CAP_TYPES = ("application/cap+xml", "application/xml", "text/xml")


@bp.errorhandler(cap.UnknownAreas)
def unknown_areas(exc: cap.UnknownAreas) -> tuple[Response, int]:
    return jsonify(error=exc.code, detail=exc.detail, unknown_areas=list(exc.areas)), 422


@bp.post("/alerts/cap")
def receive_cap() -> tuple[Response, int]:
    if request.mimetype not in CAP_TYPES:
        return error(
            415,
            "unsupported_media_type",
            f"send the CAP 1.2 document as {', '.join(CAP_TYPES)}",
        )
    got = cap.receive(loa(), actor(), request.get_data(cache=False))
    answer: dict[str, Any] = {"alert_id": got.alert_id, "duplicate": got.duplicate}
    if got.kind == "aired":
        answer |= {
            "bulletin_id": got.bulletin_id,
            "broadcasts": list(got.broadcasts),
            "communes": list(got.communes),
            "unknown_areas": list(got.unknown_areas),
        }
        if got.msg_type == "Update":
            answer |= {"superseded": got.cancelled, "still_playing": list(got.still_playing)}
        return jsonify(answer), 200 if got.duplicate else 201
    if got.kind == "cancelled":
        answer |= {
            "cancelled": got.cancelled,
            "still_playing": list(got.still_playing),
            "unknown_references": list(got.unknown_references),
        }
        if got.still_playing:
            answer["detail"] = (
                "broadcasts already playing are not stopped by a CAP Cancel; "
                "stop them at the loudspeakers"
            )
        return jsonify(answer), 200
    answer |= {
        "recorded": True,
        "status": got.status,
        "msg_type": got.msg_type,
        "communes": list(got.communes),  # where an Actual alert would have aired
        "unknown_areas": list(got.unknown_areas),
    }
    return jsonify(answer), 200
