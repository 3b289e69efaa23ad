"""/api/v1 bulletins: writing, approving, speech, the centre's lexicon, audio files."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, jsonify, request, send_file, url_for
from pydantic import Field
from sqlalchemy import select

from scheduler import asrun, bulletins, lexicon, service
from scheduler.errors import InvalidInput, NotFound
from scheduler.models import AudioAsset, Bulletin, Priority
from web.api.common import Body, Id, actor, body, created, loa

bp = Blueprint("bulletins", __name__)


Engine = Literal["auto", "gtts", "piper", "espeak"]


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
    kind: Literal["speech"] = "speech"
    title: str = Field(min_length=1, max_length=bulletins.MAX_TITLE)
    text: str = Field(min_length=1)
    topic: str = Field(default="", max_length=120)
    priority: Priority = Priority.NORMAL


class RelayIn(Body):
    """A relay (tiếp sóng): a live stream played for a set time."""

    kind: Literal["relay"]
    title: str = Field(min_length=1, max_length=bulletins.MAX_TITLE)
    stream_url: str = Field(min_length=1, max_length=bulletins.MAX_URL)
    duration_seconds: float = Field(ge=1, le=bulletins.MAX_RELAY_SECONDS)
    text: str = ""
    topic: str = Field(default="", max_length=120)
    priority: Priority = Priority.NORMAL


class BulletinEditIn(Body):
    title: str | None = Field(default=None, min_length=1, max_length=bulletins.MAX_TITLE)
    text: str | None = None
    topic: str | None = Field(default=None, max_length=120)
    priority: Priority | None = None
    stream_url: str | None = Field(default=None, min_length=1, max_length=bulletins.MAX_URL)
    duration_seconds: float | None = Field(default=None, ge=1, le=bulletins.MAX_RELAY_SECONDS)


class AudioIn(VoiceIn):
    pass


class LexiconIn(Body):
    term: str = Field(min_length=1, max_length=80)
    spoken: str = Field(min_length=1, max_length=300)


def audio_json(asset: AudioAsset) -> dict[str, Any]:
    if asset.stream_url:
        return {"stream_url": asset.stream_url, "duration_seconds": asset.duration_seconds}
    return {
        "sha256": asset.sha256,
        "duration_seconds": asset.duration_seconds,
        "engine": asset.engine,
        "voice": asset.voice,
        "fallback_reason": asset.fallback_reason,
        "loudness_lufs": asset.loudness_lufs,
        "true_peak_dbtp": asset.true_peak_dbtp,
        "url": url_for("api.bulletins.audio", sha256=asset.sha256),
    }


def bulletin_json(b: Bulletin) -> dict[str, Any]:
    tz = loa().settings.timezone
    return {
        "id": b.id,
        "kind": b.kind,
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


@bp.post("/bulletins")
def create_bulletin() -> tuple[Response, int]:
    """Text to speak (JSON), a relay (JSON with `kind: "relay"`), or a recording
    (multipart: the audio file as `file`, with `title`, `text`, `topic`, `priority`)."""
    ctx = loa()
    if request.mimetype == "multipart/form-data":
        return created(bulletin_json(create_recording()))
    raw = request.get_json(silent=True)
    if isinstance(raw, dict) and raw.get("kind") == "relay":
        relay = body(RelayIn)
        b = service.create_relay(
            ctx,
            actor(),
            title=relay.title,
            stream_url=relay.stream_url,
            seconds=relay.duration_seconds,
            text=relay.text,
            topic=relay.topic,
            priority=relay.priority,
        )
        return created(bulletin_json(b))
    data = body(BulletinIn)
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


def create_recording() -> Bulletin:
    form = request.form
    title = form.get("title", "")
    if not title.strip():
        raise InvalidInput("give the recording a title (form field 'title')", "empty_title")
    return service.create_recording(
        loa(),
        actor(),
        title=title,
        data=uploaded_audio(),
        text=form.get("text", ""),
        topic=form.get("topic", ""),
        priority=bulletins.parse_priority(form.get("priority")),
    )


def uploaded_audio() -> bytes:
    request.max_content_length = service.MAX_RECORDING_BYTES + 2**20  # the form's fields
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("send the audio file as the multipart field 'file'", "no_file")
    data: bytes = upload.read()
    return data


@bp.patch("/bulletins/<int:bulletin_id>")
def edit_bulletin(bulletin_id: int) -> Response:
    data = body(BulletinEditIn)
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletins.get_bulletin(session, bulletin_id)
        if data.stream_url is not None or data.duration_seconds is not None:
            relay = b.audio if b.kind == "relay" else None
            bulletins.set_relay(
                session,
                actor(),
                b,
                data.stream_url or (relay.stream_url if relay else None) or "",
                data.duration_seconds or (relay.duration_seconds if relay else 0),
                ctx.now(),
            )
        bulletins.edit(
            session,
            actor(),
            b,
            title=data.title if data.title is not None else b.title,
            text=data.text if data.text is not None else b.text,
            topic=data.topic if data.topic is not None else b.topic,
            priority=data.priority or Priority(b.priority),
            max_chars=ctx.renderer.max_chars,
            now=ctx.now(),
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
    service.approve_bulletin(loa(), actor(), bulletin_id)
    with loa().transaction() as session:
        return jsonify(bulletin_json(bulletins.get_bulletin(session, bulletin_id)))


@bp.post("/bulletins/<int:bulletin_id>/audio")
def render_audio(bulletin_id: int) -> Response:
    """Speak a bulletin's text again (JSON voice settings), or give a recording its new
    file (multipart `file`)."""
    if request.mimetype == "multipart/form-data":
        asset = service.replace_recording(loa(), actor(), bulletin_id, uploaded_audio())
        return jsonify(audio_json(asset))
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
        lexicon.remove(session, actor(), term, loa().now())
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


BODIES = (BulletinIn, RelayIn, BulletinEditIn, AudioIn, LexiconIn)
