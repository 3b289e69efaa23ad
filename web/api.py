"""JSON API /api/v1: bearer tokens, JSON in and out, errors as {error, detail} with a 4xx."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file, url_for
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import HTTPException

from audio.render import RenderError
from audio.tts import TtsError
from scheduler import areas, asrun, bulletins, lexicon, schedules, service
from scheduler import broadcasts as bc
from scheduler.auth import Actor, EndpointPrincipal, authenticate
from scheduler.context import Loa
from scheduler.errors import Forbidden, InvalidInput, LoaError, NotFound, Unauthorized
from scheduler.models import MAX_ID, AudioAsset, Broadcast, Bulletin, Endpoint, Priority, Role
from web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")

LONG_POLL_MAX_SECONDS = 30.0

STATUS_BY_ERROR: dict[type[LoaError], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    InvalidInput: 422,
}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Engine = Literal["auto", "gtts", "piper", "espeak"]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]  # what a database id column holds


class VoiceIn(Body):
    engine: Engine | None = None
    voice: str | None = None
    speed: float | None = Field(default=None, ge=0.5, le=2.0)
    intro_jingle_id: Id | None = None
    outro_jingle_id: Id | None = None

    def over(self, base: bulletins.Voice) -> bulletins.Voice:
        """These settings over `base`; an absent field keeps the base's."""
        return bulletins.Voice(
            engine=self.engine or base.engine,
            voice=self.voice or base.voice,
            speed=self.speed or base.speed,
            intro_id=self.intro_jingle_id if "intro_jingle_id" in self.model_fields_set
            else base.intro_id,
            outro_id=self.outro_jingle_id if "outro_jingle_id" in self.model_fields_set
            else base.outro_id,
        )  # fmt: skip


class BulletinIn(VoiceIn):
    title: str = Field(min_length=1, max_length=bulletins.MAX_TITLE)
    text: str = Field(min_length=1)
    topic: str = Field(default="", max_length=120)
    priority: Priority = Priority.NORMAL


class BulletinEditIn(Body):
    title: str | None = Field(default=None, min_length=1, max_length=bulletins.MAX_TITLE)
    text: str | None = Field(default=None, min_length=1)
    topic: str | None = Field(default=None, max_length=120)
    priority: Priority | None = None


class AudioIn(VoiceIn):
    pass


class LexiconIn(Body):
    term: str = Field(min_length=1, max_length=80)
    spoken: str = Field(min_length=1, max_length=300)


class EndpointIn(Body):
    commune: str
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["agent", "mqtt", "icecast", "local", "manual"] = "agent"
    address: str | None = Field(default=None, max_length=500)


class BroadcastIn(Body):
    bulletin_id: Id
    communes: list[str] = Field(min_length=1)
    at: AwareDatetime | None = None


class ConfirmIn(Body):
    aired: StrictBool
    reason: str | None = None
    at: AwareDatetime | None = None


class ReportIn(Body):
    delivery_id: Id
    kind: Literal["delivered", "started", "finished", "interrupted", "failed", "missed"]
    at: AwareDatetime
    detail: str | None = None
    sha256: str | None = None
    clock_offset_seconds: float | None = None


class ReportsIn(Body):
    reports: list[ReportIn] = Field(max_length=1000)


BODIES: tuple[type[Body], ...] = (
    BulletinIn, AudioIn, EndpointIn, BroadcastIn, ConfirmIn, ReportIn, ReportsIn, LexiconIn,
    BulletinEditIn,
)  # fmt: skip

B = TypeVar("B", bound=Body)


def loa() -> Loa:
    ctx: Loa = current_app.extensions["loa"]
    return ctx


def error(status: int, code: str, detail: str) -> tuple[Response, int]:
    return jsonify(error=code, detail=detail), status


def body(model: type[B]) -> B:
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("the body must be JSON (Content-Type: application/json)", "invalid_json")
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", "invalid_json")
    return model.model_validate(data)


def actor() -> Actor:
    principal = g.principal
    if not isinstance(principal, Actor):
        raise Forbidden("this token belongs to an endpoint, not a person or client")
    return principal


def endpoint_principal() -> EndpointPrincipal:
    principal = g.principal
    if not isinstance(principal, EndpointPrincipal):
        raise Forbidden("only an endpoint's token may use the agent protocol")
    return principal


PUBLIC = {"api.openapi"}


@bp.before_request
def authenticate_request() -> tuple[Response, int] | None:
    if request.endpoint in PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(401, "unauthorized", "send Authorization: Bearer <token>")
    with loa().transaction() as session:
        g.principal = authenticate(session, token.strip())
    return None


@bp.errorhandler(LoaError)
def domain_error(exc: LoaError) -> tuple[Response, int]:
    return error(STATUS_BY_ERROR.get(type(exc), 409), exc.code, exc.detail)


@bp.errorhandler(ValidationError)
def validation_error(exc: ValidationError) -> tuple[Response, int]:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
    return error(400, "invalid_body", problems)


@bp.errorhandler(RenderError)
def render_error(exc: RenderError) -> tuple[Response, int]:
    return error(422, "invalid_speech_request", str(exc))


@bp.errorhandler(TtsError)
def tts_error(exc: TtsError) -> tuple[Response, int]:
    return error(503, "speech_unavailable", str(exc))


def http_error(exc: HTTPException) -> tuple[Response, int] | HTTPException:
    """JSON answers for HTTP errors under /api/ (unknown path, wrong method, too large)."""
    if not request.path.startswith("/api/"):
        return exc
    code = exc.code or 500
    return error(code, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")


# --- views -------------------------------------------------------------------------------


def audio_json(asset: AudioAsset) -> dict[str, Any]:
    return {
        "sha256": asset.sha256,
        "duration_seconds": asset.duration_seconds,
        "engine": asset.engine,
        "voice": asset.voice,
        "fallback_reason": asset.fallback_reason,
        "loudness_lufs": asset.loudness_lufs,
        "true_peak_dbtp": asset.true_peak_dbtp,
        "url": url_for("api.audio", sha256=asset.sha256),
    }


def bulletin_json(b: Bulletin) -> dict[str, Any]:
    tz = loa().settings.timezone
    return {
        "id": b.id,
        "title": b.title,
        "text": b.text,
        "topic": b.topic,
        "priority": b.priority,
        "status": b.status,
        "created_by": b.created_by,
        "created_at": asrun.local_iso(b.created_at, tz),
        "approved_by": b.approved_by,
        "approved_at": asrun.local_iso(b.approved_at, tz),
        "engine": b.engine,
        "voice": b.voice,
        "speed": b.speed,
        "intro_jingle_id": b.intro_id,
        "outro_jingle_id": b.outro_id,
        "audio": audio_json(b.audio) if b.audio else None,
    }


def broadcast_json(b: Broadcast) -> dict[str, Any]:
    tz = loa().settings.timezone
    row = asrun.as_run_row(b, tz)
    row["commune_name"] = row["commune"]
    row["commune"] = row.pop("commune_code")
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
        }
        for d in b.deliveries
    ]
    return row


def created(payload: Any) -> tuple[Response, int]:
    return jsonify(payload), 201


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(BODIES))


@bp.get("/communes")
def list_communes() -> Response:
    actor()
    with loa().transaction() as session:
        rows = []
        for c in areas.communes(session):
            district = c.parent
            province = district.parent if district else None
            rows.append(
                {
                    "code": c.code,
                    "name": c.name,
                    "kind": c.kind,
                    "district": {"code": district.code, "name": district.name}
                    if district
                    else None,
                    "province": {"code": province.code, "name": province.name}
                    if province
                    else None,
                }
            )
    return jsonify(rows)


@bp.post("/bulletins")
def create_bulletin() -> tuple[Response, int]:
    data = body(BulletinIn)
    ctx = loa()
    b = service.create_bulletin(
        ctx,
        actor(),
        title=data.title,
        text=data.text,
        topic=data.topic,
        priority=data.priority,
        voice=data.over(bulletins.Voice(engine=ctx.settings.tts_engine)),
    )
    return created(bulletin_json(b))


@bp.patch("/bulletins/<int:bulletin_id>")
def edit_bulletin(bulletin_id: int) -> Response:
    data = body(BulletinEditIn)
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletins.get_bulletin(session, bulletin_id)
        bulletins.edit(
            session,
            actor(),
            b,
            title=data.title if data.title is not None else b.title,
            text=data.text if data.text is not None else b.text,
            topic=data.topic if data.topic is not None else b.topic,
            priority=data.priority or Priority(b.priority),
            max_chars=ctx.renderer.max_chars,
        )
        return jsonify(bulletin_json(b))


@bp.post("/bulletins/import")
def import_bulletin() -> tuple[Response, int]:
    """A draft bulletin from an uploaded DOCX or TXT (multipart field `file`)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("send the document as the multipart field 'file'", "no_file")
    b = service.import_bulletin(
        loa(),
        actor(),
        upload.filename,
        upload.read(),
        topic=request.form.get("topic", ""),
        priority=bulletins.parse_priority(request.form.get("priority")),
    )
    return created(bulletin_json(b))


@bp.get("/bulletins")
def list_bulletins() -> Response:
    actor()
    with loa().transaction() as session:
        return jsonify([bulletin_json(b) for b in bulletins.list_bulletins(session)])


@bp.get("/bulletins/<int:bulletin_id>")
def get_bulletin(bulletin_id: int) -> Response:
    actor()
    with loa().transaction() as session:
        return jsonify(bulletin_json(bulletins.get_bulletin(session, bulletin_id)))


@bp.post("/bulletins/<int:bulletin_id>/approve")
def approve_bulletin(bulletin_id: int) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletins.get_bulletin(session, bulletin_id)
        bulletins.approve(session, actor(), b, ctx.now())
        return jsonify(bulletin_json(b))


@bp.post("/bulletins/<int:bulletin_id>/audio")
def render_audio(bulletin_id: int) -> Response:
    data = body(AudioIn) if request.content_length else AudioIn()
    with loa().transaction() as session:
        current = bulletins.voice_of(bulletins.get_bulletin(session, bulletin_id))
    asset = service.render_bulletin(loa(), actor(), bulletin_id, data.over(current))
    return jsonify(audio_json(asset))


@bp.get("/lexicon")
def list_lexicon() -> Response:
    actor()
    with loa().transaction() as session:
        return jsonify([{"term": e.term, "spoken": e.spoken} for e in lexicon.entries(session)])


@bp.post("/lexicon")
def put_lexicon() -> tuple[Response, int]:
    data = body(LexiconIn)
    ctx = loa()
    with ctx.transaction() as session:
        e = lexicon.put(session, actor(), data.term, data.spoken, ctx.now())
        return created({"term": e.term, "spoken": e.spoken})


@bp.delete("/lexicon/<path:term>")
def delete_lexicon(term: str) -> tuple[Response, int]:
    with loa().transaction() as session:
        lexicon.remove(session, actor(), term)
    return jsonify(deleted=term), 200


@bp.get("/audio/<sha256>.mp3")
def audio(sha256: str) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        asset = session.scalar(select(AudioAsset).where(AudioAsset.sha256 == sha256))
        if asset is None:
            raise NotFound(f"no audio has the checksum {sha256}", "unknown_audio")
        path = ctx.settings.audio_dir / asset.path
    if not path.exists():
        raise NotFound("the audio file is missing from the store; render it again", "audio_gone")
    return send_file(path, mimetype="audio/mpeg", conditional=True, max_age=86400)


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
            q = q.where(Endpoint.commune_id == who.commune_id)
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


@bp.get("/reports/broadcasts.csv")
def broadcasts_csv() -> Response:
    who = actor()
    who.require(Role.ADMIN, Role.CENTRE, Role.REPORTER, Role.OPERATOR)
    f = _filter()
    out = io.StringIO()
    with loa().transaction() as session:
        asrun.write_csv(asrun.query(session, who, f), out, loa().settings.timezone)
    return Response(
        "\ufeff" + out.getvalue(),  # BOM: Excel opens UTF-8 Vietnamese correctly
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=as-run.csv"},
    )


# --- agent protocol ------------------------------------------------------------------------


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
