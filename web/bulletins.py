"""Bulletins in the panel: write (speech, a recording or a relay), listen, approve, schedule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from audio.normalize import normalize
from audio.render import RenderError
from audio.tts import TtsError
from scheduler import areas, bulletins, calendar, jingles, jobs, lexicon, service
from scheduler.auth import MANAGERS
from scheduler.bulletins import parse_priority
from scheduler.errors import InvalidInput, LoaError, NotFound
from scheduler.models import Bulletin, BulletinKind, BulletinStatus, Priority
from web.auth import current_actor, login_required
from web.common import actor_label, flash_error, loa, local, parse_local
from web.i18n import error_text, translate
from web.jobs import start
from web.planning import actor_commune, placement_view

bp = Blueprint("bulletins", __name__, url_prefix="/bulletins")

LONG_TEXT = 2000  # characters: a longer bulletin is read aloud in a background job


def bulletin_or_404(session: Session, bulletin_id: int) -> Bulletin:
    try:
        return bulletins.get_bulletin(session, bulletin_id)
    except NotFound:
        abort(404)


def flash_speech_error(exc: RenderError | TtsError) -> None:
    """A speech failure in the panel's language, with the engine's own words after it."""
    key = "invalid_speech_request" if isinstance(exc, RenderError) else "speech_unavailable"
    flash(f"{error_text(key, '')} ({exc})", "error")


def voice_from_form(form: Mapping[str, str], base: bulletins.Voice) -> bulletins.Voice:
    """The voice fields of a form over `base` (a field left out keeps the base's)."""
    try:
        speed = float(form.get("speed") or base.speed)
    except ValueError:
        raise InvalidInput(f"{form.get('speed')!r} is not a speed", "invalid_speed") from None

    def jingle(name: str, current: int | None) -> int | None:
        if name not in form:
            return current
        value = form.get(name) or ""
        return int(value) if value.isdigit() else None

    return bulletins.Voice(
        engine=form.get("engine") or base.engine,
        voice=form.get("voice") or base.voice,
        speed=speed,
        intro_id=jingle("intro", base.intro_id),
        outro_id=jingle("outro", base.outro_id),
    )


def voice_choices() -> dict[str, Any]:
    """What the voice fields of a form offer."""
    with loa().transaction() as session:
        jingle_rows = [{"id": j.id, "name": j.name} for j in jingles.listing(session)]
    return {
        "engines": loa().renderer.engine_names,
        "voices": loa().renderer.voices,
        "jingles": jingle_rows,
    }


# What a bulletin plays, as the new-bulletin page offers it.
KINDS = (
    (BulletinKind.SPEECH.value, "Text read by a voice"),
    (BulletinKind.RECORDING.value, "Recorded file"),
    (BulletinKind.RELAY.value, "Relay"),
)
UPLOAD_LIMIT = service.MAX_RECORDING_BYTES + 2**20  # the file and the form's other fields


@bp.url_value_preprocessor
def allow_recordings(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """A recording may be up to 100 MB, more than the app's limit for a request. URL value
    preprocessors run before the before-request CSRF check reads the form, so the limit
    is raised here for the two forms that upload one."""
    if endpoint in ("bulletins.create", "bulletins.upload_recording"):
        request.max_content_length = UPLOAD_LIMIT


def uploaded_audio() -> bytes:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("choose an MP3, WAV or OGG file", "no_file")
    data: bytes = upload.read()
    return data


def relay_seconds(minutes: str | None) -> float:
    """A relay's length from the form's minutes ('30', '1,5')."""
    try:
        return float((minutes or "").strip().replace(",", ".")) * 60
    except ValueError:
        raise InvalidInput(f"{minutes!r} is not a number of minutes", "invalid_duration") from None


def index_page(values: MultiDict[str, str], status: int = 200) -> tuple[str, int]:
    """The list and the new-bulletin form, filled with `values` (what the user typed)."""
    kinds = [k for k, _ in KINDS]
    kind = values.get("kind") if values.get("kind") in kinds else BulletinKind.SPEECH.value
    with loa().transaction() as session:
        rows = [
            {
                "id": b.id,
                "kind": b.kind,
                "title": b.title,
                "topic": b.topic,
                "priority": b.priority,
                "status": b.status,
                "created": local(b.created_at, "%d/%m/%Y %H:%M"),
                "author": actor_label(b.created_by),
                "duration": b.audio.duration_seconds if b.audio else None,
            }
            for b in bulletins.list_bulletins(session)
        ]

    def jingle(name: str) -> int | None:
        value = values.get(name, "")
        return int(value) if value.isdigit() else None

    voice = {
        "engine": values.get("engine") or loa().settings.tts_engine,
        "voice": values.get("voice") or "vi",
        "speed": values.get("speed") or 1.0,
        "intro": jingle("intro"),
        "outro": jingle("outro"),
    }
    page = render_template(
        "bulletins.html",
        rows=rows,
        v=values,
        kind=kind,
        kinds=KINDS,
        voice=voice,
        priorities=[p.value for p in Priority],
        **voice_choices(),
    )
    return page, status


@bp.get("")
@login_required
def index() -> tuple[str, int]:
    return index_page(MultiDict({"kind": request.args.get("kind", "")}))


def create_of_kind(form: MultiDict[str, str]) -> int:
    """Create the bulletin the form describes; its id."""
    ctx, actor = loa(), current_actor()
    fields: dict[str, Any] = {
        "title": form.get("title", ""),
        "text": form.get("text", ""),
        "topic": form.get("topic", ""),
        "priority": parse_priority(form.get("priority")),
    }
    kind = form.get("kind")
    if kind == BulletinKind.RECORDING:
        if not fields["title"].strip():  # before the slow mastering of the file
            raise InvalidInput("the title is empty", "empty_title")
        return service.create_recording(ctx, actor, data=uploaded_audio(), **fields).id
    if kind == BulletinKind.RELAY:
        seconds = relay_seconds(form.get("minutes"))
        return service.create_relay(
            ctx, actor, stream_url=form.get("stream_url", ""), seconds=seconds, **fields
        ).id
    voice = voice_from_form(form, bulletins.Voice(engine=ctx.settings.tts_engine))
    return service.create_bulletin(ctx, actor, voice=voice, **fields).id


@bp.post("")
@login_required
def create() -> Response | tuple[str, int]:
    try:
        bulletin_id = create_of_kind(request.form)
    except LoaError as exc:
        flash_error(exc)
        return index_page(request.form, 422)  # the form again, as the user filled it
    flash(translate("Bulletin created."), "ok")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/import")
@login_required
def import_document() -> Response:
    upload = request.files.get("document")
    try:
        if upload is None or not upload.filename:
            raise InvalidInput("choose a .docx or .txt file", "no_file")
        b = service.import_bulletin(
            loa(),
            current_actor(),
            upload.filename,
            upload.read(),
            topic=request.form.get("topic", ""),
            priority=parse_priority(request.form.get("priority")),
        )
    except LoaError as exc:
        flash_error(exc)
        return redirect(url_for("bulletins.index"))
    flash(translate("Document imported: check the spoken text before approving."), "ok")
    return redirect(url_for("bulletins.detail", bulletin_id=b.id))


def detail_page(
    bulletin_id: int, relay_form: Mapping[str, str] | None = None, status: int = 200
) -> tuple[str, int]:
    """A bulletin's page; `relay_form`: what the user typed in the relay form that failed."""
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletin_or_404(session, bulletin_id)
        audio = b.audio
        relay = None
        if b.kind == BulletinKind.RELAY and audio is not None:
            relay = {
                "stream_url": audio.stream_url or "",
                "minutes": f"{audio.duration_seconds / 60:g}",
            }
        view = {
            "id": b.id,
            "kind": b.kind,
            "speech": b.kind == BulletinKind.SPEECH,
            "long": len(b.text) > LONG_TEXT,  # rendered in a background job
            "title": b.title,
            "text": b.text,
            "spoken": normalize(b.text, lexicon.as_mapping(session))
            if b.kind == BulletinKind.SPEECH
            else "",
            "engine": b.engine,
            "voice": b.voice,
            "speed": b.speed,
            "intro": b.intro_id,
            "outro": b.outro_id,
            "topic": b.topic,
            "priority": b.priority,
            "status": b.status,
            "approved": b.status == BulletinStatus.APPROVED,
            "created_by": actor_label(b.created_by),
            "approved_by": actor_label(b.approved_by),
            "relay": relay,
            "audio": {
                "engine": audio.engine,
                "voice": audio.voice,
                "duration": audio.duration_seconds,
                "offline": audio.fallback_reason is not None,
                "sha256": audio.sha256,
                "lufs": audio.loudness_lufs,
                "peak": audio.true_peak_dbtp,
            }
            if audio and audio.path  # a relay's asset has no file
            else None,
        }
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
        # Where and when it plays (an operator: in their commune).
        mine = actor_commune(current_actor())
        placed = [
            placement_view(p)
            for p in calendar.placements(session, bulletin_id=bulletin_id, commune_id=mine)
        ]
        upcoming, upcoming_total = calendar.next_broadcasts(
            session, bulletin_id, ctx.now(), commune_id=mine
        )
    default_at = (ctx.now() + timedelta(minutes=2)).astimezone(ctx.settings.timezone)
    page = render_template(
        "bulletin.html",
        b=view,
        relay_form=relay_form or relay or {},
        communes=communes,
        default_at=default_at.strftime("%Y-%m-%dT%H:%M"),
        priorities=[p.value for p in Priority],
        placements=placed,
        upcoming=[
            {
                "id": u.id,
                "commune": u.commune,
                "at": local(u.scheduled_at, "%H:%M %d/%m/%Y"),
                "status": u.status,
                "overflow": u.overflow,
            }
            for u in upcoming
        ],
        upcoming_more=upcoming_total - len(upcoming),
        **voice_choices(),
    )
    return page, status


@bp.get("/<int:bulletin_id>")
@login_required
def detail(bulletin_id: int) -> tuple[str, int]:
    return detail_page(bulletin_id)


@bp.post("/<int:bulletin_id>/recording")
@login_required
def upload_recording(bulletin_id: int) -> Response:
    """A recording bulletin's new file."""
    try:
        service.replace_recording(loa(), current_actor(), bulletin_id, uploaded_audio())
        flash(translate("New recording uploaded."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/<int:bulletin_id>/relay")
@login_required
def relay(bulletin_id: int) -> Response | tuple[str, int]:
    """A relay bulletin's stream and length (a change returns it to draft)."""
    ctx = loa()
    form = request.form
    try:
        seconds = relay_seconds(form.get("minutes"))
        with ctx.transaction() as session:
            bulletins.set_relay(
                session,
                current_actor(),
                bulletin_or_404(session, bulletin_id),
                form.get("stream_url", ""),
                seconds,
                ctx.now(),
            )
    except LoaError as exc:
        flash_error(exc)
        return detail_page(bulletin_id, form, 422)
    flash(translate("Saved."), "ok")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/<int:bulletin_id>/edit")
@login_required
def edit(bulletin_id: int) -> Response:
    ctx = loa()
    form = request.form
    try:
        with ctx.transaction() as session:
            bulletins.edit(
                session,
                current_actor(),
                bulletin_or_404(session, bulletin_id),
                title=form.get("title", ""),
                text=form.get("text", ""),
                topic=form.get("topic", ""),
                priority=parse_priority(form.get("priority")),
                max_chars=ctx.renderer.max_chars,
                now=ctx.now(),
            )
        flash(translate("Saved."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/<int:bulletin_id>/render")
@login_required
def render(bulletin_id: int) -> Response:
    """Read the bulletin aloud now; a long one in a background job, with its page."""
    try:
        with loa().transaction() as session:
            b = bulletin_or_404(session, bulletin_id)
            current, long = bulletins.voice_of(b), len(b.text) > LONG_TEXT
        voice = voice_from_form(request.form, current)
        if long:
            current_actor().require(*MANAGERS)
            return start(jobs.RENDER, jobs.render_params(bulletin_id, voice))
        service.render_bulletin(loa(), current_actor(), bulletin_id, voice)
        flash(translate("Speech rendered."), "ok")  # the page says if the voice is offline
    except LoaError as exc:
        flash_error(exc)
    except (RenderError, TtsError) as exc:
        flash_speech_error(exc)
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/<int:bulletin_id>/approve")
@login_required
def approve(bulletin_id: int) -> Response:
    try:
        service.approve_bulletin(loa(), current_actor(), bulletin_id)
        flash(translate("Approved."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/<int:bulletin_id>/schedule")
@login_required
def schedule(bulletin_id: int) -> Response:
    form = request.form
    try:
        service.schedule_bulletin(
            loa(),
            current_actor(),
            bulletin_id,
            form.getlist("communes"),
            parse_local(form.get("at", "")),
        )
        flash(translate("Scheduled."), "ok")
    except LoaError as exc:
        flash_error(exc)
        return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))
    except (RenderError, TtsError) as exc:
        flash_speech_error(exc)
        return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))
    return redirect(url_for("today.index"))


@bp.get("/<int:bulletin_id>/audio.mp3")
@login_required
def audio(bulletin_id: int) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletin_or_404(session, bulletin_id)
        if b.audio is None or not b.audio.path:  # none yet, or a relay
            abort(404)
        path = ctx.settings.audio_dir / b.audio.path
    return send_file(path, mimetype="audio/mpeg", conditional=True)
