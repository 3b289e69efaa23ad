"""User administration in the panel (administrators): create, change role and communes,
disable, set a new password."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from scheduler import areas, users
from scheduler.errors import Forbidden, LoaError
from scheduler.models import Role
from web.auth import current_actor, login_required
from web.common import flash_error, loa
from web.i18n import translate

bp = Blueprint("users", __name__, url_prefix="/users")
ROLES = [r.value for r in Role]


def _page(form: dict[str, object] | None = None, status: int = 200) -> tuple[str, int]:
    with loa().transaction() as session:
        try:
            found = users.listing(session, current_actor())
        except Forbidden:
            abort(403)
        rows = [
            {
                "id": u.id,
                "username": u.username,
                "name": u.display_name,
                "role": u.role,
                "communes": [c.code for c in u.communes],
                "commune_names": ", ".join(c.name for c in u.communes),
                "active": u.active,
            }
            for u in found
        ]
        communes = [{"code": c.code, "name": c.name} for c in areas.communes(session)]
    page = render_template("users.html", rows=rows, communes=communes, roles=ROLES, form=form or {})
    return page, status


@bp.get("")
@login_required
def index() -> tuple[str, int]:
    return _page()


@bp.post("")
@login_required
def create() -> Response | tuple[str, int]:
    ctx, form = loa(), request.form
    try:
        with ctx.transaction() as session:
            users.create_user(
                session, current_actor(), username=form.get("username", ""),
                display_name=form.get("display_name", ""), password=form.get("password", ""),
                role=form.get("role", ""), communes=form.getlist("communes"), now=ctx.now(),
            )  # fmt: skip
    except LoaError as exc:
        flash_error(exc)
        kept = {k: form.get(k, "") for k in ("username", "display_name", "role")}
        return _page({**kept, "communes": form.getlist("communes")}, 422)
    flash(translate("User created."), "ok")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>")
@login_required
def update(user_id: int) -> Response:
    ctx, form = loa(), request.form
    try:
        with ctx.transaction() as session:
            users.update_user(
                session, current_actor(), user_id, display_name=form.get("display_name", ""),
                role=form.get("role", ""), communes=form.getlist("communes"),
                active=form.get("active") == "on", now=ctx.now(),
            )  # fmt: skip
            password = form.get("password", "")
            if password:
                users.reset_password(session, current_actor(), user_id, password, ctx.now())
        flash(translate("Saved."), "ok")
    except LoaError as exc:
        flash_error(exc)
    return redirect(url_for("users.index"))
