"""What every /api/v1 blueprint shares: the request body models' base, the context, the
caller, and JSON answers."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from flask import Response, current_app, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from scheduler.auth import Actor, EndpointPrincipal
from scheduler.context import Loa
from scheduler.errors import (
    BadRequest,
    Forbidden,
    InvalidInput,
    LoaError,
    NotFound,
    Unauthorized,
)
from scheduler.models import MAX_ID

STATUS_BY_ERROR: dict[type[LoaError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    InvalidInput: 422,
}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Id = Annotated[int, Field(ge=1, le=MAX_ID)]  # what a database id column holds


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


def created(payload: Any) -> tuple[Response, int]:
    return jsonify(payload), 201
