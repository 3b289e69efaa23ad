"""The lexicon in the panel: words the centre teaches the normalizer, and a place to try."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from audio.normalize import normalize
from scheduler import lexicon
from scheduler.errors import LoaError
from web.auth import current_actor, login_required
from web.common import actor_label, flash_error, loa
from web.i18n import translate

bp = Blueprint("lexicon", __name__, url_prefix="/lexicon")


@bp.get("")
@login_required
def index() -> str:
    sample = request.args.get("try", "")
    with loa().transaction() as session:
        rows = [
            {"term": e.term, "spoken": e.spoken, "by": actor_label(e.created_by)}
            for e in lexicon.entries(session)
        ]
        spoken = normalize(sample, lexicon.as_mapping(session)) if sample else ""
    return render_template("lexicon.html", rows=rows, sample=sample, spoken=spoken)


@bp.post("")
@login_required
def put() -> Response:
    ctx = loa()
    try:
        with ctx.transaction() as session:
            lexicon.put(
                session,
                current_actor(),
                request.form.get("term", ""),
                request.form.get("spoken", ""),
                ctx.now(),
            )
        flash(translate("Saved. New renders read it this way."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("lexicon.index"))


@bp.post("/delete")
@login_required
def delete() -> Response:
    try:
        with loa().transaction() as session:
            lexicon.remove(session, current_actor(), request.form.get("term", ""), loa().now())
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("lexicon.index"))
