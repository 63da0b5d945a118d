"""Property: over any sequence of registrations, reports, ticks, disconnects and operator answers, the
unknown tasks ``handle`` kills on its own (not by an operator's answer) since the leader took office, or
since an operator last resolved every alert, never exceed the fleet-wide budget; and none is killed
before the picture is complete, while the budget is tripped, or by a leader whose state is not trusted."""

from __future__ import annotations

from typing import Any

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain import wire
from corral.domain.states import TaskState
from corral.fleet import (
    Disconnected,
    FleetBook,
    FleetPolicy,
    ReconciliationAlert,
    Registered,
    ResolveAlert,
    StatusReported,
    Tick,
)
from corral.fleet.budget import fleet_running, picture_complete
from tests.domain.factories import task
from tests.fleet.fakes import JOIN, FakeView, own

S = TaskState
HOSTS = ("h0", "h1", "h2", "h3")
OWN = {h: [f"{h}-t{i}" for i in range(2)] for h in HOSTS}  # tasks the leader places on each host
UNKNOWN = [f"u{i}" for i in range(12)]  # tasks nobody has a record of
DONE = ["d0", "d1"]  # tasks the store records as finished
IDS = [*UNKNOWN, *DONE, *(t for ids in OWN.values() for t in ids)]

state = st.sampled_from([S.STARTED, S.STARTED, S.STARTED, S.FINISHED])
reports = st.lists(st.tuples(st.sampled_from(IDS), state), max_size=8, unique_by=lambda p: p[0]).map(
    lambda pairs: tuple(wire.TaskReport(task_id, s) for task_id, s in pairs)
)
host = st.sampled_from(HOSTS)
op = st.one_of(
    st.tuples(st.just("register"), host, reports, st.sampled_from([False, False, False, True])),
    st.tuples(st.just("status"), host, reports, st.sampled_from([False, False, False, True])),
    st.tuples(st.just("tick")),
    st.tuples(st.just("beat")),
    st.tuples(st.just("disconnect"), host, st.booleans()),
    st.tuples(st.just("resolve"), st.integers(0, 3), st.booleans()),
)
policies = st.builds(
    FleetPolicy,
    heartbeat_timeout_s=st.just(25.0),
    lost_after_s=st.sampled_from([40.0, 120.0]),
    unknown_kill_min=st.integers(0, 6),
    unknown_kill_pct=st.sampled_from([0.0, 1.0, 5.0]),
    quorum_pct=st.sampled_from([0.0, 0.0, 50.0, 90.0, 100.0]),
    settle_s=st.sampled_from([0.0, 0.0, 10.0, 30.0]),
)


def event_of(view: FakeView, step: tuple[Any, ...], n: int) -> Any:
    kind = step[0]
    if kind == "register":
        _, host, found, join = step
        credential = JOIN if join or host not in view.credentials else own(host)
        return Registered(host, f"{host}/{n}", credential, found, frozenset(DONE))
    if kind == "status":
        _, host, found, stale = step
        current = view.sessions.get(host)
        session = f"{host}/stale" if stale or current is None else current.session_id
        return StatusReported(host, session, found, frozenset(DONE))
    if kind == "disconnect":
        _, host, stale = step
        current = view.sessions.get(host)
        return Disconnected(host, f"{host}/stale" if stale or current is None else current.session_id, "test")
    if kind == "resolve":
        _, index, kill = step
        alerts = view.book.open_alerts
        alert_id = alerts[index].id if index < len(alerts) else "no-such-alert"
        return ResolveAlert(alert_id, kill)
    return Tick()


@settings(max_examples=300, deadline=None)
@given(
    policy=policies,
    trusted=st.booleans(),
    expected=st.sets(st.sampled_from(HOSTS)),
    running=st.sampled_from([0, 0, 150, 800]),
    steps=st.lists(st.tuples(op, st.floats(0.0, 15.0)), max_size=60),
)
def test_unknown_kills_never_exceed_the_fleet_wide_budget(
    policy: FleetPolicy,
    trusted: bool,
    expected: set[str],
    running: int,
    steps: list[tuple[tuple[Any, ...], float]],
) -> None:
    view = FakeView(book=FleetBook.at_start(0.0, trusted, expected, policy.lost_after_s), running=running)
    view.add(*(task(t, S.STARTED, host_id=h) for h, ids in OWN.items() for t in ids))
    killed_since_reset: set[tuple[str, str]] = set()
    by_operator: set[tuple[str, str]] = set()  # what an operator chose to kill (and kills again)
    now = 0.0
    for n, (step, dt) in enumerate(steps):
        now += dt
        if step[0] == "beat":
            view.beat(now)
            continue
        event = event_of(view, step, n)
        before = view.book
        decision = view.step(event, now, policy)
        unknown = {(h, s.task_id) for h, s in decision.kills if s.task_id in UNKNOWN} - by_operator
        if isinstance(event, ResolveAlert):
            by_operator |= unknown
            answered = [a for a in decision.alerts_resolved if isinstance(a, ReconciliationAlert)]
            if answered and not view.book.alerts:
                killed_since_reset = set()  # the operator has checked the state
            continue
        if decision.refused is not None:
            assert decision.stimuli == () and decision.kills == () and not decision.accept_session
            continue
        new = unknown - killed_since_reset
        if new:
            assert before.trusted and not before.tripped
            assert picture_complete(view.book, now, policy)
        killed_since_reset |= unknown
        if new:
            assert len(killed_since_reset) <= policy.budget(fleet_running(view, view.book))
            note("unknown tasks killed")
        if view.book.tripped:
            note("budget tripped")
        assert len(view.book.killed) <= len(killed_since_reset)
