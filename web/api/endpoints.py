"""/api/v1 endpoints and the agent protocol (schedule long-poll, proof-of-play reports)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import AwareDatetime, Field
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from scheduler import asrun, schedules, service
from scheduler import broadcasts as bc
from scheduler.context import Loa
from scheduler.errors import InvalidInput
from scheduler.models import Endpoint, Role
from web.api.common import Body, Id, actor, body, created, endpoint_principal, loa

bp = Blueprint("endpoints", __name__)


LONG_POLL_MAX_SECONDS = 30.0


class EndpointIn(Body):
    commune: str
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["agent", "mqtt", "icecast", "local", "manual"] = "agent"
    address: str | None = Field(default=None, max_length=500)


class ReportIn(Body):
    delivery_id: Id
    kind: Literal["delivered", "started", "finished", "interrupted", "failed", "missed"]
    at: AwareDatetime
    detail: str | None = None
    sha256: str | None = None
    clock_offset_seconds: float | None = None


class ReportsIn(Body):
    reports: list[ReportIn] = Field(max_length=1000)


@bp.post("/endpoints")
def create_endpoint() -> tuple[Response, int]:
    data = body(EndpointIn)
    endpoint, token = service.create_endpoint(
        loa(), actor(), data.commune, data.name, data.kind, data.address
    )
    return created(
        {
            "id": endpoint.id,
            "commune": endpoint.commune.code,
            "name": endpoint.name,
            "kind": endpoint.kind,
            "token": token,
        }
    )


@bp.get("/endpoints")
def list_endpoints() -> Response:
    who = actor()
    tz = loa().settings.timezone
    with loa().transaction() as session:
        q = select(Endpoint).where(Endpoint.active.is_(True)).order_by(Endpoint.id)
        if who.role == Role.OPERATOR:
            q = q.where(Endpoint.commune_id.in_(who.communes))
        return jsonify(
            [
                {
                    "id": e.id,
                    "commune": e.commune.code,
                    "name": e.name,
                    "kind": e.kind,
                    "address": service.public_address(e.address),
                    "state": e.state,
                    "state_since": asrun.local_iso(e.state_since, tz),
                    "last_seen": asrun.local_iso(e.last_seen_at, tz),
                    "last_seen_at": asrun.local_iso(e.last_seen_at, tz),
                    "agent_version": e.agent_version,
                    "clock_offset_seconds": e.clock_offset_seconds,
                    "cache_free_bytes": e.cache_free_bytes,
                    "missing_audio": e.missing_audio,
                    "cache_error": e.cache_error,
                    "virtual": e.kind == "virtual",
                }
                for e in session.scalars(q.options(joinedload(Endpoint.commune)))
            ]
        )


@bp.delete("/endpoints/<int:endpoint_id>")
def retire_endpoint(endpoint_id: int) -> Response:
    """Remove a device: deactivated, its token refused, its open deliveries cancelled."""
    endpoint, cancelled = service.retire_endpoint(loa(), actor(), endpoint_id)
    return jsonify(
        id=endpoint.id,
        commune=endpoint.commune.code,
        name=endpoint.name,
        kind=endpoint.kind,
        active=endpoint.active,
        cancelled_deliveries=cancelled,
    )


def schedule_documents(loa: Loa, endpoint_ids: list[int], prefix: str) -> dict[int, Any]:
    """The schedules of these endpoints, each with its current version."""
    notifier, now = loa.notifier, loa.now()
    versions = {endpoint_id: notifier.version(endpoint_id) for endpoint_id in endpoint_ids}
    with loa.transaction() as session:
        docs = schedules.schedules(
            session,
            endpoint_ids,
            now,
            horizon=timedelta(hours=loa.settings.horizon_hours),
            grace=loa.grace,
            audio_url=lambda sha256: f"{prefix}/api/v1/audio/{sha256}.mp3",
            mqtt_url=loa.settings.mqtt_device_url,
        )
    for endpoint_id, doc in docs.items():
        doc["version"] = versions[endpoint_id]
    return docs


@bp.get("/agent/schedule")
def agent_schedule() -> Response:
    """The endpoint's schedule; with ?version=V&wait=S, held until it changes (long-poll)."""
    me = endpoint_principal()
    seen = request.args.get("version")
    try:
        wait = min(float(request.args.get("wait", "0")), LONG_POLL_MAX_SECONDS)
    except ValueError:
        raise InvalidInput("wait must be a number of seconds", "invalid_wait") from None
    ctx = loa()
    beat = schedules.parse_beat(request.args, ctx.now())
    if seen and wait > 0:
        ctx.notifier.wait(me.endpoint_id, seen, wait)  # threaded servers; the front waits itself
    ctx.heartbeats.beat(me.endpoint_id, replace(beat, at=ctx.now()))
    docs = schedule_documents(ctx, [me.endpoint_id], request.script_root)
    return jsonify(docs[me.endpoint_id])


@bp.post("/agent/reports")
def agent_reports() -> Response:
    me = endpoint_principal()
    data = body(ReportsIn)
    reports = [bc.PlayReport(**r.model_dump()) for r in data.reports]
    changed = service.record_reports(loa(), me.endpoint_id, reports)
    return jsonify(received=len(reports), changed=changed)


BODIES = (EndpointIn, ReportIn, ReportsIn)
