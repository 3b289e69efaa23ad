"""JSON API /api/v1: bearer tokens, JSON in and out, errors as {error, detail} with a 4xx.
One blueprint per resource under this one, which authenticates and maps errors."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from audio.render import RenderError
from audio.tts import TtsError
from scheduler.auth import authenticate
from scheduler.errors import LoaError
from web.api import alerts, audit, broadcasts, bulletins, endpoints, planning, reports
from web.api.common import STATUS_BY_ERROR, error, loa
from web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api/v1")
for child in (bulletins, reports, broadcasts, planning, endpoints, alerts, audit):
    bp.register_blueprint(child.bp)

BODIES = bulletins.BODIES + broadcasts.BODIES + planning.BODIES + endpoints.BODIES


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


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(openapi_document(BODIES))
