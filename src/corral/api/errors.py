"""Every error leaves as JSON ``{code, message, field?}``: stable codes, never a bare 500 for bad input."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from corral.control.service import UNAVAILABLE
from corral.domain.errors import CorralError

log = logging.getLogger(__name__)

# pydantic error types -> our stable codes
_PYDANTIC_CODES = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "json_invalid": "malformed_json",
    "finite_number": "invalid_number",
    "union_tag_invalid": "invalid_retry_kind",
    "union_tag_not_found": "missing_field",
    "model_attributes_type": "invalid_type",
    "dict_type": "invalid_type",
    "list_type": "invalid_type",
    "int_from_float": "invalid_type",
}
_RETRY_KINDS = {"immediate", "delayed", "exponential"}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, str]:
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return body


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    # A discriminated union puts the tag into the path (retry_policy.exponential.retries): drop it.
    parts = [
        p for i, p in enumerate(parts) if not (p in _RETRY_KINDS and i and parts[i - 1] == "retry_policy")
    ]
    return ".".join(parts)


REFUSALS = frozenset({401, 403, 429})


def count_refusal(request: HTTPConnection, exc: CorralError) -> None:
    """Refusals (authentication, authorization, admission) are counted: a spike is someone to talk to."""
    master = getattr(request.app.state, "master", None)
    if exc.status in REFUSALS and master is not None:
        master.metrics.refused.labels(str(exc.status), exc.code).inc()


def install(app: FastAPI) -> None:
    @app.exception_handler(CorralError)
    async def corral_error(request: Request, exc: CorralError) -> JSONResponse:
        count_refusal(request, exc)
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=exc.headers() or None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"type": "invalid", "msg": "invalid request", "loc": ()}
        kind = str(first.get("type", "invalid"))
        code = _PYDANTIC_CODES.get(
            kind, "invalid_type" if kind.endswith(("_type", "_parsing")) else "invalid_value"
        )
        field = _field(tuple(first.get("loc", ())))
        message = str(first.get("msg", "invalid request"))
        if field and code != "malformed_json":
            message = f"{field}: {message}"
        return JSONResponse(error_body(code, message, field or None), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    async def store_down(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body("store_unavailable", str(exc)), status_code=503)

    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, store_down)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(error_body("internal_error", f"{type(exc).__name__}: {exc}"), status_code=500)
