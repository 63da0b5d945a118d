"""Errors a user or a peer can cause, each with a stable code and, where it applies, the field at fault."""

from __future__ import annotations


class CorralError(Exception):
    """Base of all errors that cross an edge (API, CLI, agent protocol) with a stable ``code``."""

    status = 400

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the error (e.g. Retry-After)."""
        return {}

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        return out


class ValidationError(CorralError):
    """The input is malformed or breaks a rule; nothing was changed."""

    status = 400


class NotFoundError(CorralError):
    status = 404

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind}_not_found", f"{kind} {ident!r} does not exist")


class ConflictError(CorralError):
    """The request is well formed but contradicts the current state (e.g. resizing a finished job)."""

    status = 409


class Unauthenticated(CorralError):
    """No credential, or one that is unknown, revoked or expired."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__("unauthenticated", message)

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="corral"'}


class Forbidden(CorralError):
    """The caller is known but may not do this."""

    status = 403

    def __init__(self, message: str, code: str = "forbidden", field: str | None = None) -> None:
        super().__init__(code, message, field)


class Throttled(CorralError):
    """Too much at once (one caller's rate, or everyone's queue): 429, try again after ``retry_after_s``."""

    status = 429

    def __init__(self, code: str, message: str, retry_after_s: float) -> None:
        super().__init__(code, message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, int(self.retry_after_s + 0.999)))}
