"""Panel login with users from the database, rate-limited against password guessing.
Every form carries Flask-WTF's CSRF token (`{{ csrf_token() }}`, see web/__init__.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from scheduler import asrun
from scheduler import auth as domain_auth
from scheduler.auth import MANAGERS, Actor
from scheduler.models import User
from web.common import loa, local
from web.i18n import LANGUAGES, translate

bp = Blueprint("auth", __name__)

F = TypeVar("F", bound=Callable[..., Any])


def load_user() -> None:
    g.user = None
    user_id = session.get("user_id")
    if user_id is None:
        return
    with loa().transaction() as db:
        user = db.get(User, user_id)
        if user is not None and user.active:
            g.user = user
            g.user_language = user.language
            g.actor = domain_auth.user_actor(user)
            _ = user.commune.name if user.commune else None
            g.user_names = asrun.user_names(db)  # people named in the pages (actor_label)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:  # the login page says why (a neutral note), no flash
            return redirect(url_for("auth.login", next=request.full_path))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def current_actor() -> Actor:
    actor: Actor = g.actor
    return actor


def template_flags() -> dict[str, bool]:
    actor = g.get("actor")
    return {"may_manage": actor is not None and actor.role in MANAGERS}


def init_app(app: Flask) -> None:
    app.before_request(load_user)
    app.context_processor(template_flags)


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    if request.method == "POST":
        username, address = request.form.get("username", ""), request.remote_addr or ""
        now = loa().now()
        with loa().transaction() as db:
            until = domain_auth.login_locked_until(db, username, address, now)
            if until is not None:
                user_id = None
            else:
                user = domain_auth.login(db, username, request.form.get("password", ""))
                user_id = user.id if user else None
                domain_auth.note_login(db, username, address, user_id is not None, now)
        if until is not None:  # the password is not even checked
            text = translate("Too many failed logins. Try again after {time}.")
            flash(text.format(time=local(until, "%H:%M")), "error")
            return render_template("login.html"), 429
        if user_id is not None:
            lang = session.get("lang")
            session.clear()
            session.permanent = True  # expires after PERMANENT_SESSION_LIFETIME
            session["user_id"] = user_id
            if lang:
                session["lang"] = lang
            target = request.args.get("next", "")
            local_path = target.startswith("/") and not target.startswith("//")
            return redirect(target if local_path else url_for("today.index"))
        flash(translate("Wrong username or password."), "error")
        return render_template("login.html")
    # Sent here from a page that needs a login: a note, not an error; none on the start page.
    sent = request.args.get("next", "") not in ("", "/", "/?")
    return render_template("login.html", note=translate("Log in to continue.") if sent else "")


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    if code in LANGUAGES:
        session["lang"] = code
    target = request.referrer or url_for("today.index")
    return redirect(target)
