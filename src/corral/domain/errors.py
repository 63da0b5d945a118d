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
