"""fleet/budget.py: the unknown-task rule — the whole picture first, then a fleet-wide budget since this
leader took office; past it (or with untrusted state) nothing is killed and one alert waits for an
operator, whose answer starts the budget again."""

from __future__ import annotations

from corral.domain import wire
from corral.domain.states import FinishedReason, TaskState
from corral.fleet import (
    Disconnected,
    FleetBook,
    FleetPolicy,
    ReconciliationAlert,
    Refusal,
    ResolveAlert,
    Stranger,
    Tick,
    next_deadline,
)
from tests.domain.factories import task
from tests.fleet.fakes import (
    POLICY,
    FakeView,
    killed_ids,
    own,
    register,
    reports,
    settled_book,
    status,
    strangers,
)

S = TaskState
SETTLE = POLICY.settle_s


def fresh_leader(expected: tuple[str, ...] = (), trusted: bool = True) -> FakeView:
    return FakeView(book=FleetBook.at_start(0.0, trusted, expected, POLICY.lost_after_s))


def only_alert(view: FakeView) -> ReconciliationAlert:
    [alert] = view.book.alerts
    return alert


def test_ten_hosts_with_five_unknown_tasks_each_on_a_fresh_leader_kill_nothing_and_raise_one_alert() -> None:
    view = fresh_leader()  # e.g. an empty (truncated) store facing a fleet: it expects no host at all
    for i in range(10):
        d = view.step(register(f"h{i}", *strangers(f"h{i}", 5)), 1.0 + i)
        assert d.kills == () and d.alerts_raised == ()  # held: the leader has not seen the whole fleet
    assert len(view.book.held) == 50
    view.beat(SETTLE - 5)
    assert next_deadline(view.book, view, POLICY) == SETTLE  # the shell wakes up to judge them
    d = view.step(Tick(), SETTLE)
    assert d.kills == ()
    assert len(d.alerts_raised) == 1 and view.book.alerts == d.alerts_raised
    alert = only_alert(view)
    assert len(alert.unknown_tasks) == 50 and len(alert.hosts) == 10
    assert "none were killed" in alert.message and "budget" in alert.message
    assert view.book.tripped and view.book.held == () and view.book.killed == frozenset()


def test_a_leader_that_expects_ten_hosts_and_has_heard_from_eight_holds() -> None:
    hosts = tuple(f"h{i}" for i in range(10))
    view = fresh_leader(hosts)
    for host in hosts[:8]:
        view.step(register(host, *strangers(host, 1)), 1.0)
    view.beat(SETTLE + 60)
    d = view.step(Tick(), SETTLE + 60)  # long settled, but only 80 % of the fleet is back
    assert d.kills == () and d.alerts_raised == () and len(view.book.held) == 8
    d = view.step(register("h8", *strangers("h8", 1)), SETTLE + 61)  # 90 %: judged now, as one batch
    assert view.book.held == ()
    assert d.kills == () and len(d.alerts_raised) == 1  # 9 > 5
    assert len(only_alert(view).unknown_tasks) == 9


def test_held_tasks_within_the_budget_are_killed_once_the_picture_is_whole() -> None:
    view = fresh_leader(("h1", "h2"))
    view.step(register("h1", *strangers("h1", 2)), 1.0)
    view.step(register("h2", *strangers("h2", 2)), 2.0)
    view.beat(SETTLE - 1)
    assert view.book.held and next_deadline(view.book, view, POLICY) == SETTLE
    d = view.step(Tick(), SETTLE)
    assert len(d.kills) == 4 and d.alerts_raised == ()
    assert len(view.book.killed) == 4


def test_a_leader_waits_for_the_settling_time_even_with_every_expected_host_back() -> None:
    view = fresh_leader(("h1",))
    d = view.step(register("h1", *strangers("h1", 1)), 1.0)
    assert d.kills == () and len(view.book.held) == 1
    view.beat(SETTLE - 1)
    assert view.step(Tick(), SETTLE - 0.001).kills == ()
    assert len(view.step(Tick(), SETTLE).kills) == 1


def test_when_every_expected_host_is_back_or_lost_the_picture_is_complete() -> None:
    view = fresh_leader(("h1", "h2", "h3"))
    view.step(register("h1", *strangers("h1", 1)), 1.0)
    view.beat(60.0)
    assert view.step(Tick(), 60.0).kills == ()  # 1 of 3: hold
    view.beat(POLICY.lost_after_s)
    d = view.step(Tick(), POLICY.lost_after_s)  # h2 and h3 are declared lost: nobody is awaited any more
    assert killed_ids(d) == {"ghost-h1-0"}


def test_held_tasks_of_a_host_that_disconnected_are_dropped_from_the_batch() -> None:
    view = fresh_leader()
    view.step(register("h1", *strangers("h1", 3)), 1.0)
    view.step(register("h2", *strangers("h2", 1)), 2.0)
    view.step(Disconnected("h1", "h1/s", "connection reset"), 3.0)
    assert view.book.held == (Stranger("h2", "ghost-h2-0"),)
    view.beat(SETTLE)
    assert killed_ids(view.step(Tick(), SETTLE)) == {"ghost-h2-0"}


def test_a_held_task_that_finished_is_dropped() -> None:
    view = fresh_leader()
    view.step(register("h1", *strangers("h1", 2)), 1.0)
    d = view.step(
        register(
            "h1", *reports(("ghost-h1-0", S.FINISHED), "ghost-h1-1"), session="h1/2", credential=own("h1")
        ),
        2.0,
    )
    assert d.forget_after_commit == (("h1", "ghost-h1-0"),)
    assert view.book.held == (Stranger("h1", "ghost-h1-1"),)


def test_a_held_task_reported_again_is_held_once() -> None:
    view = fresh_leader()
    view.step(register("h1", *strangers("h1", 2)), 1.0)
    view.step(register("h1", *strangers("h1", 2), session="h1/2", credential=own("h1")), 2.0)
    assert len(view.book.held) == 2


def test_the_budget_counts_across_hosts() -> None:
    view = FakeView(book=settled_book())
    assert len(view.step(register("h1", *strangers("h1", 2))).kills) == 2
    assert len(view.step(register("h2", *strangers("h2", 2))).kills) == 2
    third = view.step(register("h3", *strangers("h3", 2)))  # 4 + 2 > 5: none of the batch is killed
    assert third.kills == () and len(third.alerts_raised) == 1
    assert view.book.tripped and len(view.book.killed) == 4
    fourth = view.step(register("h4", *strangers("h4", 1)))  # within budget, but the budget tripped
    assert fourth.kills == () and len(fourth.alerts_raised) == 1
    assert "no operator has resolved it yet" in fourth.alerts_raised[0].message
    assert len(view.book.alerts) == 2  # alerts never grow: what an operator resolves is what they saw


def test_the_budget_is_one_percent_of_a_big_fleet() -> None:
    view = FakeView(book=settled_book(), running=2000)  # budget: 1 % of 2000 = 20
    assert len(view.step(register("h1", *strangers("h1", 15))).kills) == 15
    assert len(view.step(register("h2", *strangers("h2", 5))).kills) == 5
    assert view.step(register("h3", *strangers("h3", 1))).kills == ()  # the 21st
    assert view.book.tripped


def test_the_fleet_counts_what_the_agents_report_when_the_leader_holds_less() -> None:
    view = FakeView(book=settled_book())  # the leader holds no task at all
    view.step(
        register(
            "big",
            *reports(*(f"known-{i}" for i in range(3000))),
            finished_in_store=[f"known-{i}" for i in range(3000)],
        )
    )
    assert view.book.reported_running == {"big": 3000}
    assert len(view.step(register("h1", *strangers("h1", 30))).kills) == 30  # 1 % of 3000


def test_a_leader_with_untrusted_state_kills_no_unknown_task() -> None:
    view = FakeView(book=settled_book(trusted=False))
    d = view.step(register("h1", *strangers("h1", 1)))
    assert d.kills == () and "not trusted" in d.alerts_raised[0].message
    assert view.step(ResolveAlert(d.alerts_raised[0].id, kill=False)).refused is None
    assert view.step(register("h2", *strangers("h2", 1))).kills == ()  # still untrusted: alerts again
    # ... but what the leader does know is still enforced:
    view.add(task("t1", S.STARTED, host_id="h9"))
    assert killed_ids(view.step(register("h3", *reports("t1")))) == {"t1"}


def test_an_unknown_task_already_killed_is_killed_again_without_counting_twice() -> None:
    view = FakeView(book=settled_book())
    view.step(register("h1", *strangers("h1", 5)))
    d = view.step(
        register("h1", *strangers("h1", 5), session="h1/2", credential=own("h1"))
    )  # the kills had not landed yet
    assert len(d.kills) == 5 and d.alerts_raised == () and len(view.book.killed) == 5


def test_a_task_in_an_open_alert_reported_again_raises_no_second_alert() -> None:
    view = FakeView(book=settled_book())
    view.step(register("h1", *strangers("h1", 6)))
    d = view.step(register("h1", *strangers("h1", 6), session="h1/2", credential=own("h1")))
    assert d.alerts_raised == () and len(view.book.alerts) == 1


# -- an operator resolves ------------------------------------------------------------------------------


def tripped_fleet() -> tuple[FakeView, ReconciliationAlert]:
    view = FakeView(book=settled_book())
    d = view.step(register("orphans", *reports(*(f"orphan-{i}" for i in range(9)))))
    return view, d.alerts_raised[0]  # type: ignore[return-value]


def test_an_operator_resolves_with_kill_and_the_budget_starts_again() -> None:
    # (port of test_an_operator_resolves_a_reconciliation_alert)
    view, alert = tripped_fleet()
    wrong = view.step(ResolveAlert("nope", kill=True))
    assert wrong.refused == Refusal(404, "alert_not_found", "alert 'nope' does not exist")
    d = view.step(ResolveAlert(alert.id, kill=True))
    assert d.refused is None
    assert d.kills_by_host() == {
        "orphans": tuple(wire.KillSpec(f"orphan-{i}", FinishedReason.KILLED, 0.0) for i in range(9))
    }
    assert d.alerts_resolved == (alert,) and view.book.alerts == ()
    assert not view.book.tripped and view.book.killed == frozenset()
    assert len(view.step(register("h2", *strangers("h2", 5))).kills) == 5  # a full budget again


def test_an_operator_resolves_with_keep_and_the_tasks_are_tolerated() -> None:
    view, alert = tripped_fleet()
    d = view.step(ResolveAlert(alert.id, kill=False))
    assert d.kills == () and not view.book.tripped
    assert view.book.tolerated == frozenset(alert.unknown_tasks)
    again = view.step(
        register("orphans", *reports(*alert.unknown_tasks), session="orphans/2", credential=own("orphans"))
    )
    assert again.kills == () and again.alerts_raised == ()


def test_the_budget_starts_again_only_once_every_alert_is_resolved() -> None:
    view, first = tripped_fleet()
    second = view.step(register("h2", *strangers("h2", 1))).alerts_raised[0]
    view.step(ResolveAlert(first.id, kill=False))
    assert view.book.tripped and view.step(register("h3", *strangers("h3", 1))).kills == ()
    for alert in view.book.alerts:
        view.step(ResolveAlert(alert.id, kill=False))
    assert second.id not in {a.id for a in view.book.alerts}
    assert not view.book.tripped and len(view.step(register("h4", *strangers("h4", 1))).kills) == 1


def test_resolving_with_kill_for_a_host_that_is_not_connected_is_refused() -> None:
    view, alert = tripped_fleet()
    view.step(Disconnected("orphans", "orphans/s", "gone"))
    d = view.step(ResolveAlert(alert.id, kill=True))
    assert d.refused is not None and (d.refused.status, d.refused.code) == (409, "host_unreachable")
    assert d.kills == () and view.book.alerts == (alert,)
    assert view.step(ResolveAlert(alert.id, kill=False)).refused is None  # keeping them needs no host


def test_resolving_a_batch_alert_kills_on_the_hosts_that_are_connected() -> None:
    view = FakeView(book=FleetBook.at_start(0.0, True, (), POLICY.lost_after_s))
    for host in ("h1", "h2", "h3"):
        view.step(register(host, *strangers(host, 2)), 1.0)
    view.beat(SETTLE)
    [alert] = view.step(Tick(), SETTLE, FleetPolicy(unknown_kill_min=1)).alerts_raised
    view.step(Disconnected("h3", "h3/s", "gone"), SETTLE)
    d = view.step(ResolveAlert(alert.id, kill=True), SETTLE)
    assert set(d.kills_by_host()) == {"h1", "h2"} and len(d.kills) == 4
    assert any("judged again" in line.message for line in d.logs)


def test_tasks_an_operator_killed_reported_again_while_they_stop_are_killed_again_not_alerted() -> None:
    view, alert = tripped_fleet()
    view.step(ResolveAlert(alert.id, kill=True))
    stopping = reports(*((t, S.KILL_INITIATED) for t in alert.unknown_tasks))
    d = view.step(status("orphans", *stopping))
    assert killed_ids(d) == set(alert.unknown_tasks)
    assert d.alerts_raised == () and not view.book.tripped and view.book.killed == frozenset()
    done = view.step(status("orphans", *reports(*((t, S.FINISHED) for t in alert.unknown_tasks))))
    assert len(done.forget_after_commit) == 9 and view.book.condemned == frozenset()
