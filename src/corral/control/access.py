"""Who may see and change which jobs: the team rules, as pure functions over a principal and a job.

Roles (who may write at all, who is an admin) are declared by each route; these rules are about teams:
a principal changes only its own team's jobs (admins: any), and with ``read_scope == "team"`` it reads
only its own team's jobs too.
"""

from __future__ import annotations

from corral.domain.auth import Principal
from corral.domain.errors import Forbidden
from corral.domain.job import Job


def check_change(principal: Principal, job: Job) -> None:
    """Raise Forbidden (``wrong_team``) unless ``principal`` may change ``job``."""
    if not principal.may_change(job.team):
        owner = job.team or "no team"
        raise Forbidden(
            f"job {job.id} belongs to {owner}; {principal.name} is in team {principal.team!r}", "wrong_team"
        )


def may_read(read_scope: str, principal: Principal, team: str) -> bool:
    """Whether ``principal`` may see a job of ``team`` (always, unless reads are scoped to teams)."""
    return read_scope != "team" or principal.is_admin or principal.team == team


def check_read(read_scope: str, principal: Principal, job: Job) -> None:
    if not may_read(read_scope, principal, job.team):
        raise Forbidden(f"job {job.id} belongs to another team and reads are scoped to teams", "wrong_team")
