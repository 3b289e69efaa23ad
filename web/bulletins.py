"""Bulletins in the panel: write, listen, approve, schedule."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from audio.normalize import normalize
from audio.render import ENGINE_CHAINS, RenderError
from audio.tts import ESPEAK_VOICES, TtsError
from scheduler import areas, bulletins, service
from scheduler.bulletins import parse_priority
from scheduler.errors import LoaError, NotFound
from scheduler.models import Bulletin, BulletinStatus, Priority
from web.auth import current_actor, login_required
from web.common import actor_label, flash_error, loa, local, parse_local
from web.i18n import error_text, translate

bp = Blueprint("bulletins", __name__, url_prefix="/bulletins")


def bulletin_or_404(session: Session, bulletin_id: int) -> Bulletin:
    try:
        return bulletins.get_bulletin(session, bulletin_id)
    except NotFound:
        abort(404)


@bp.get("")
@login_required
def index() -> str:
    with loa().transaction() as session:
        rows = [
            {
                "id": b.id,
                "title": b.title,
                "topic": b.topic,
                "priority": b.priority,
                "status": b.status,
                "created": local(b.created_at, "%d/%m/%Y %H:%M"),
                "duration": b.audio.duration_seconds if b.audio else None,
            }
            for b in bulletins.list_bulletins(session)
        ]
    return render_template("bulletins.html", rows=rows, priorities=[p.value for p in Priority])


@bp.post("")
@login_required
def create() -> Response | str:
    ctx = loa()
    form = request.form
    try:
        with ctx.transaction() as session:
            b = bulletins.create_bulletin(
                session,
                current_actor(),
                title=form.get("title", ""),
                text=form.get("text", ""),
                topic=form.get("topic", ""),
                priority=parse_priority(form.get("priority")),
                now=ctx.now(),
                max_chars=ctx.renderer.max_chars,
            )
            bulletin_id = b.id
    except LoaError as exc:
        flash_error(exc)
        return redirect(url_for("bulletins.index"))
    flash(translate("Bulletin created."), "ok")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.get("/<int:bulletin_id>")
@login_required
def detail(bulletin_id: int) -> str:
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletin_or_404(session, bulletin_id)
        audio = b.audio
        view = {
            "id": b.id,
            "title": b.title,
            "text": b.text,
            "spoken": normalize(b.text),
            "topic": b.topic,
            "priority": b.priority,
            "status": b.status,
            "approved": b.status == BulletinStatus.APPROVED,
            "created_by": actor_label(b.created_by),
            "approved_by": actor_label(b.approved_by),
            "audio": {
                "engine": audio.engine,
                "voice": audio.voice,
                "duration": audio.duration_seconds,
                "offline": audio.fallback_reason is not None,
                "sha256": audio.sha256,
            }
            if audio
            else None,
        }
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
    default_at = (ctx.now() + timedelta(minutes=2)).astimezone(ctx.settings.timezone)
    return render_template(
        "bulletin.html",
        b=view,
        communes=communes,
        engines=list(ENGINE_CHAINS),
        voices=list(ESPEAK_VOICES),
        default_at=default_at.strftime("%Y-%m-%dT%H:%M"),
    )


@bp.post("/<int:bulletin_id>/render")
@login_required
def render(bulletin_id: int) -> Response:
    form = request.form
    try:
        asset = service.render_bulletin(
            loa(), current_actor(), bulletin_id, form.get("engine"), form.get("voice", "vi")
        )
        flash(translate("Speech rendered."), "ok")
        if asset.fallback_reason:
            flash(translate("Offline voice used: no internet."), "warning")
    except LoaError as exc:
        flash_error(exc)
    except (RenderError, TtsError) as exc:
        flash(error_text("speech_unavailable", str(exc)) + f" ({exc})", "error")
    return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))


@bp.post("/<int:bulletin_id>/approve")
@login_required
def approve(bulletin_id: int) -> Response:
    ctx = loa()
    try:
        with ctx.transaction() as session:
            b = bulletins.get_bulletin(session, bulletin_id)
            bulletins.approve(session, current_actor(), b, ctx.now())
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
        flash(error_text("speech_unavailable", str(exc)), "error")
        return redirect(url_for("bulletins.detail", bulletin_id=bulletin_id))
    return redirect(url_for("today.index"))


@bp.get("/<int:bulletin_id>/audio.mp3")
@login_required
def audio(bulletin_id: int) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        b = bulletin_or_404(session, bulletin_id)
        if b.audio is None:
            abort(404)
        path = ctx.settings.audio_dir / b.audio.path
    return send_file(path, mimetype="audio/mpeg", conditional=True)
