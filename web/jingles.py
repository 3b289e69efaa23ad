"""Jingles in the panel: upload (loudness-matched on the way in) and listen."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from scheduler import jingles
from scheduler.auth import MANAGERS
from scheduler.errors import InvalidInput, LoaError, NotFound
from web.auth import current_actor, login_required
from web.common import actor_label, flash_error, loa
from web.i18n import translate

bp = Blueprint("jingles", __name__, url_prefix="/jingles")


@bp.get("")
@login_required
def index() -> str:
    with loa().transaction() as session:
        rows = [
            {
                "id": j.id,
                "name": j.name,
                "duration": j.duration_seconds,
                "by": actor_label(j.created_by),
            }
            for j in jingles.listing(session)
        ]
    return render_template("jingles.html", rows=rows)


@bp.post("")
@login_required
def upload() -> Response:
    ctx = loa()
    file = request.files.get("file")
    try:
        current_actor().require(*MANAGERS)
        if file is None or not file.filename:
            raise InvalidInput("choose an audio file", "no_file")
        path, duration = jingles.prepare(ctx.settings.jingle_dir, file.read())
        with ctx.transaction() as session:
            jingles.add(
                session, current_actor(), request.form.get("name", ""), path, duration, ctx.now()
            )
        flash(translate("Jingle added, matched to the speech loudness."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("jingles.index"))


@bp.get("/<int:jingle_id>.wav")
@login_required
def audio(jingle_id: int) -> Response:
    ctx = loa()
    with ctx.transaction() as session:
        try:
            path = ctx.settings.jingle_dir / jingles.get(session, jingle_id).path
        except NotFound:
            abort(404)
    return send_file(path, mimetype="audio/wav", conditional=True)
