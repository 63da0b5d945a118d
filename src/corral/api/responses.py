"""The error responses each route documents in the OpenAPI document: every status code a route can
return is listed there (schemathesis' status_code_conformance check holds the API to it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

DESCRIPTIONS = {
    400: "Invalid request: a stable `code` and the `field` at fault",
    401: "No credential, or one that is unknown, revoked or expired",
    403: "The credential may not do this (role, team, quota)",
    404: "No such record",
    408: "The request body did not arrive in time (the connection is closed)",
    409: "The request contradicts the current state",
    413: "The request body is larger than the master accepts",
    429: "Too much at once: retry after the Retry-After header",
    503: "This master does not lead (the message names the leader), or the store is unavailable",
}
# Every /api/v1 call: authenticated (401), refused to agent credentials (403), answered only by the leader.
COMMON = (401, 403, 503)


class ErrorBody(BaseModel):
    code: str = Field(description="a stable code, e.g. invalid_email, job_not_found, rate_limited")
    message: str
    field: str | None = Field(None, description="the field at fault, when there is one")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer with these error statuses (plus the common ones). A
    route that takes a body (413) can also time out receiving it (408)."""
    wanted = {*COMMON, *statuses}
    if 413 in wanted:
        wanted.add(408)
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in sorted(wanted)}
