"""fleet/identity.py, rule 5: a host registers only with its own credential (issue 11, point 6)."""

from __future__ import annotations

from corral.domain.states import TaskState
from corral.domain.stimuli import Reported
from corral.fleet import (
    Credential,
    Decision,
    Disconnected,
    ImpostorAlert,
    Refusal,
    ResolveAlert,
    SessionInfo,
)
from tests.domain.factories import task
from tests.fleet.fakes import JOIN, FakeView, own, register, reports, status

S = TaskState


def real_host_with_three_tasks() -> FakeView:
    view = FakeView().add(*(task(f"t{i}", S.STARTED) for i in range(3)))
    first = view.step(register("h1", *reports("t0", "t1", "t2"), session="real"), 1.0)
    assert first.mint_credential_for == "h1"  # the join token's first registration: a credential is minted
    return view


def test_a_credential_bound_to_another_host_is_refused() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    d = view.step(register("h1", credential=Credential("tok-h2", "h2")), 1.0)
    assert d.refused == Refusal(403, "wrong_host", "credential tok-h2 is bound to host h2, not h1")
    assert not d.accept_session and d.stimuli == () and view.sessions == {}


def test_an_impostor_is_refused_while_the_real_session_lives_and_its_tasks_are_untouched() -> None:
    # The reproduction: a second agent with the shared token, as a live host, reporting 0 tasks.
    view = real_host_with_three_tasks()
    d = view.step(register("h1", session="impostor"), 2.0)
    assert d.refused is not None and (d.refused.status, d.refused.code) == (409, "host_claimed")
    assert not d.accept_session and d.mint_credential_for is None
    assert (d.stimuli, d.kills, d.launch_after_commit, d.close_sessions) == ((), (), (), ())
    assert view.sessions["h1"].session_id == "real"
    [alert] = d.alerts_raised
    assert isinstance(alert, ImpostorAlert)
    assert (alert.host_id, alert.credential_id, alert.at) == ("h1", "join", 2.0)
    assert view.book.impostors == (alert,)
    # The real agent goes on as before.
    assert view.step(status("h1", *reports(("t0", S.FINISHED)), session="real"), 3.0).forget_after_commit
    # When the real agent reconnects with its own credential, its tasks are reconciled as usual.
    again = view.step(register("h1", *reports("t0", "t1", "t2"), session="real2", credential=own("h1")), 4.0)
    assert again.accept_session and all(isinstance(s.stimulus, Reported) for s in again.stimuli)


def test_an_impostor_that_retries_counts_attempts_on_one_alert() -> None:
    view = real_host_with_three_tasks()
    for at in (2.0, 3.0, 4.0):
        view.step(register("h1", session=f"impostor-{at}"), at)
    [alert] = view.book.impostors
    assert (alert.attempts, alert.at, alert.last_at) == (3, 2.0, 4.0)


def test_a_host_with_its_own_credential_refuses_the_join_token_even_when_it_is_not_connected() -> None:
    view = FakeView(credentials={"h1": "minted-h1"}).add(task("t1", S.STARTED))
    d = view.step(register("h1"), 1.0)
    assert d.refused is not None and d.refused.code == "host_claimed"
    assert d.stimuli == ()  # its task is not lost to a registration that reports nothing


def test_a_host_without_a_credential_connected_with_another_one_is_claimed() -> None:
    view = FakeView()
    view.sessions["h1"] = SessionInfo("s1", "other-join", 0.0, 0.0)
    d = view.step(register("h1", session="s2"), 1.0)
    assert d.refused is not None and (d.refused.status, d.refused.code) == (409, "host_claimed")
    assert len(view.book.impostors) == 1 and view.sessions["h1"].session_id == "s1"


def test_the_same_credential_reconnecting_replaces_its_old_session() -> None:
    view = real_host_with_three_tasks()
    d = view.step(register("h1", *reports("t0", "t1", "t2"), session="real2", credential=own("h1")), 2.0)
    assert d.accept_session and d.refused is None and d.mint_credential_for is None
    assert d.close_sessions == (("h1", "real", "replaced by a new connection from the same agent"),)
    assert view.sessions["h1"].session_id == "real2"


def test_a_join_token_reconnecting_before_any_credential_was_minted_replaces_its_session() -> None:
    view = FakeView()
    view.sessions["h1"] = SessionInfo("s1", JOIN.token_id, 0.0, 0.0)
    d = view.step(register("h1", session="s2"), 1.0)
    assert (
        d.accept_session
        and d.mint_credential_for == "h1"
        and d.close_sessions == (("h1", "s1", "replaced by a new connection from the same agent"),)
    )


def test_another_credential_bound_to_the_host_is_accepted() -> None:
    # An operator made a second one (`corral admin token create --agent --host h1`), e.g. to rotate.
    view = FakeView(credentials={"h1": "minted-h1"})
    d = view.step(register("h1", credential=Credential("made-by-admin", "h1")), 1.0)
    assert d.accept_session and d.mint_credential_for is None


def test_an_operator_dismisses_an_impostor_alert() -> None:
    view = real_host_with_three_tasks()
    [alert] = view.step(register("h1", session="impostor"), 2.0).alerts_raised
    d = view.step(ResolveAlert(alert.id, kill=False), 3.0)
    assert d.alerts_resolved == (alert,) and view.book.impostors == ()
    assert d == Decision(view.book, alerts_resolved=(alert,), logs=d.logs)


def test_an_agent_that_never_received_its_credential_may_join_again_with_the_join_token() -> None:
    """Found under load: the master froze, the agent gave its connection up (pings unanswered) before the
    `registered` message with its new credential reached it, and every registration after that was
    refused as an impostor — a host locked out for good. A credential this leader minted from the same
    join token and no agent ever presented is replaced: the join token claims the host again."""
    view = FakeView().add(task("t1", S.STARTED))
    first = view.step(register("h1", *reports("t1"), session="s1"), 1.0)
    assert first.mint_credential_for == "h1"
    view.step(Disconnected("h1", "s1", "connection closed"), 2.0)
    again = view.step(register("h1", *reports("t1"), session="s2"), 3.0)
    assert again.refused is None and again.accept_session
    assert again.mint_credential_for == "h1" and again.replace_credential == "minted-h1"
    assert view.book.impostors == ()
    assert view.sessions["h1"].session_id == "s2"


def test_a_credential_once_presented_is_not_replaced_by_the_join_token() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.step(register("h1", *reports("t1"), session="s1"), 1.0)
    view.step(register("h1", *reports("t1"), session="s2", credential=own("h1")), 2.0)  # received and used
    view.step(Disconnected("h1", "s2", "connection closed"), 3.0)
    d = view.step(register("h1", session="impostor"), 4.0)
    assert d.refused is not None and d.refused.code == "host_claimed"
    assert d.mint_credential_for is None and d.replace_credential is None


def test_an_undelivered_credential_is_not_replaced_while_its_join_session_lives() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.step(register("h1", *reports("t1"), session="s1"), 1.0)  # still connected on the join token
    d = view.step(register("h1", session="other"), 2.0)
    assert d.refused is not None and d.refused.code == "host_claimed"
    assert view.sessions["h1"].session_id == "s1"


def test_a_credential_minted_from_another_join_token_or_by_another_leader_is_not_replaced() -> None:
    view = FakeView(credentials={"h1": "minted-h1"}).add(task("t1", S.STARTED))  # a predecessor minted it
    assert view.step(register("h1"), 1.0).refused is not None
    view = FakeView().add(task("t1", S.STARTED))
    view.step(register("h1", *reports("t1"), session="s1", credential=Credential("join-a")), 1.0)
    view.step(Disconnected("h1", "s1", "connection closed"), 2.0)
    d = view.step(register("h1", session="s2", credential=Credential("join-b")), 3.0)
    assert d.refused is not None and d.refused.code == "host_claimed"
