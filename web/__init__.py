"""Flask app factory: panel blueprints and the JSON API over one Loa context."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from scheduler.context import Loa
from scheduler.models import MAX_ID
from web import (
    api,
    audit,
    auth,
    bulletins,
    endpoints,
    i18n,
    jingles,
    jobs,
    lexicon,
    log,
    planning,
    public,
    reports,
    today,
    users,
)


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: a number a database id column can hold, else 404."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


SESSION_LIFETIME = timedelta(hours=12)


def create_app(loa: Loa) -> Flask:
    app = Flask(__name__)
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config.update(
        SECRET_KEY=loa.settings.secret_key,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Sent over HTTPS only when the panel is reached over HTTPS (LOA_PUBLIC_URL).
        SESSION_COOKIE_SECURE=(loa.settings.public_url or "").startswith("https://"),
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,  # a login lasts a working day
        WTF_CSRF_TIME_LIMIT=int(SESSION_LIFETIME.total_seconds()),  # a form open as long
        LOA_LANGUAGE=loa.settings.language,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["loa"] = loa
    i18n.init_app(app)
    auth.init_app(app)
    jobs.init_app(app, loa)  # the job pool: its threads start with the first job
    blueprints = (
        api.bp,
        auth.bp,
        today.bp,
        bulletins.bp,
        planning.bp,
        log.bp,
        endpoints.bp,
        lexicon.bp,
        jingles.bp,
        public.bp,
        audit.bp,
        reports.bp,
        jobs.bp,
        users.bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    # After auth.init_app, so a refused form's 400 page knows the user's language.
    csrf = CSRFProtect(app)
    for name, registered in app.blueprints.items():
        if name.split(".")[0] in ("api", "public"):  # bearer tokens, or nothing to post
            csrf.exempt(registered)
    app.register_error_handler(HTTPException, http_error)
    return app


def http_error(exc: HTTPException) -> Any:
    """JSON under /api/; elsewhere a page in the user's language (never Flask's English)."""
    if request.path.startswith("/api/"):
        return api.http_error(exc)
    code = exc.code or 500
    known = code in (400, 403, 404, 405, 413, 500)
    title = f"http-title:{code}" if known else f"{code} {exc.name}"
    text = f"http-text:{code}" if known else None
    return render_template("error.html", title=title, text=text), code
