"""Who may do what: teams, API tokens (only their digest is kept), principals and their roles.

A principal is what an authenticated token stands for. Its role bounds what it may do at all; its team
bounds which jobs it may change (and, when reads are scoped to teams, which it may see).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from corral.domain.errors import ValidationError


class Role(StrEnum):
    ADMIN = "admin"  # everything, every team's jobs, the fleet and the operator APIs
    USER = "user"  # submits jobs for its team and changes its team's jobs; reads
    VIEWER = "viewer"  # reads only
    AGENT = "agent"  # opens the agent stream, and nothing else


@dataclass(frozen=True, slots=True)
class Team:
    """A team and its admission limits (0: no limit for that dimension).

    ``emails`` are the owner addresses its jobs may name: exact addresses (``alice@example.com``) or whole
    domains (``@example.com``). A team without any accepts any owner address.
    """

    name: str
    emails: tuple[str, ...] = ()
    max_active_jobs: int = 0
    max_active_tasks: int = 0
    submit_rate_per_s: float = 0.0  # 0: the master's default
    submit_burst: int = 0  # 0: the master's default
    created_at: float = 0.0

    def accepts_owner(self, email: str) -> bool:
        if not self.emails:
            return True
        email = email.lower()
        for pattern in self.emails:
            pattern = pattern.lower()
            if pattern.startswith("@") and email.endswith(pattern):
                return True
            if email == pattern:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Token:
    """A credential. ``digest`` is the SHA-256 of the secret: the secret itself is never stored."""

    id: str
    name: str
    team: str
    role: Role
    digest: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    created_by: str = ""
    host: str = ""  # an agent credential bound to one host: it registers that host and no other

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: str
    name: str
    team: str
    role: Role
    host: str = ""  # for a host-bound agent credential: the host it may register

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def may_write(self) -> bool:
        return self.role in (Role.ADMIN, Role.USER)

    def may_change(self, job_team: str) -> bool:
        """Whether this principal may kill, resize, enable or disable a job of ``job_team``."""
        return self.is_admin or (self.role is Role.USER and job_team == self.team)


ADMINS_TEAM = "admins"
AGENTS_TEAM = "agents"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")
_EMAIL_PATTERN = re.compile(r"^([^@\s]+)?@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\Z")


def validate_team(team: Team) -> None:
    if not _NAME.match(team.name):
        raise ValidationError(
            "invalid_team_name",
            "a team name is 1-63 of a-z 0-9 _ . - starting with a letter or digit",
            "name",
        )
    for pattern in team.emails:
        if not _EMAIL_PATTERN.match(pattern):
            raise ValidationError(
                "invalid_email_pattern",
                f"{pattern!r} is neither an address (a@b.org) nor a domain (@b.org)",
                "emails",
            )
    for field in ("max_active_jobs", "max_active_tasks", "submit_burst"):
        if getattr(team, field) < 0:
            raise ValidationError("invalid_value", f"{field} must be 0 (no limit) or more", field)
    if not team.submit_rate_per_s >= 0 or team.submit_rate_per_s > 1e6:
        raise ValidationError(
            "invalid_value", "submit_rate_per_s must be between 0 and 1e6", "submit_rate_per_s"
        )


def validate_token_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValidationError(
            "invalid_token_name",
            "a token name is 1-63 of a-z 0-9 _ . - starting with a letter or digit",
            "name",
        )
