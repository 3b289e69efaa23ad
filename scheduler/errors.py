"""Typed domain errors: each carries a short machine code and a readable detail."""


class LoaError(Exception):
    """Base of errors a caller shows to the user; `code` is stable, `detail` is prose."""

    code = "error"

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class BadRequest(LoaError):
    """The request itself is malformed (e.g. a document that does not parse): HTTP 400."""

    code = "bad_request"


class InvalidInput(LoaError):
    code = "invalid_input"


class NotFound(LoaError):
    code = "not_found"


class Conflict(LoaError):
    code = "conflict"


class Forbidden(LoaError):
    code = "forbidden"


class Unauthorized(LoaError):
    code = "unauthorized"
