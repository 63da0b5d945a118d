"""Teams, tokens and principals: the rules that need no I/O."""

from __future__ import annotations

import pytest

from corral.domain.auth import Principal, Role, Team, Token, validate_team, validate_token_name
from corral.domain.errors import ValidationError


def test_a_team_accepts_its_addresses_and_domains_only() -> None:
    team = Team("payments", emails=("@payments.example.com", "oncall@example.com"))
    assert team.accepts_owner("alice@payments.example.com")
    assert team.accepts_owner("ALICE@Payments.Example.com")
    assert team.accepts_owner("oncall@example.com")
    assert not team.accepts_owner("mallory@example.com")
    assert not team.accepts_owner("alice@evilpayments.example.com.attacker.org")
    assert Team("open").accepts_owner("anyone@anywhere.org")


def test_a_domain_pattern_matches_at_the_at_sign_not_inside_a_name() -> None:
    team = Team("payments", emails=("@example.com",))
    assert team.accepts_owner("a@example.com")
    assert not team.accepts_owner("a@badexample.com")


@pytest.mark.parametrize(
    ("team", "code", "field"),
    [
        (Team("Payments"), "invalid_team_name", "name"),
        (Team(""), "invalid_team_name", "name"),
        (Team("ok", emails=("not-an-email",)), "invalid_email_pattern", "emails"),
        (Team("ok", max_active_jobs=-1), "invalid_value", "max_active_jobs"),
        (Team("ok", submit_rate_per_s=float("nan")), "invalid_value", "submit_rate_per_s"),
    ],
)
def test_bad_teams_are_refused_with_a_code_and_field(team: Team, code: str, field: str) -> None:
    with pytest.raises(ValidationError) as e:
        validate_team(team)
    assert (e.value.code, e.value.field) == (code, field)


def test_token_names_are_checked() -> None:
    validate_token_name("ci-deployer.prod")
    with pytest.raises(ValidationError):
        validate_token_name("has space")


def test_tokens_stop_being_usable_when_revoked_or_expired() -> None:
    token = Token("t", "n", "team", Role.USER, "d", created_at=0.0, expires_at=100.0)
    assert token.usable(99.0) and not token.usable(100.0)
    assert not Token("t", "n", "team", Role.USER, "d", 0.0, revoked_at=5.0).usable(1.0)


def test_who_may_change_a_job() -> None:
    assert Principal("t", "a", "payments", Role.USER).may_change("payments")
    assert not Principal("t", "a", "payments", Role.USER).may_change("search")
    assert not Principal("t", "a", "payments", Role.USER).may_change("")
    assert not Principal("t", "v", "payments", Role.VIEWER).may_change("payments")
    assert not Principal("t", "g", "agents", Role.AGENT).may_change("agents")
    assert Principal("t", "root", "admins", Role.ADMIN).may_change("search")
