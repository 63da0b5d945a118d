"""fleet/protocol.py, rules 1 and 2: a (re)registering agent's reports against the tasks the leader places
on its host, and reports of tasks the leader does not place there (including the expectations of
tests/integration/test_agent_protocol.py that concern reconciliation, as unit tests)."""

from __future__ import annotations

from corral.domain import wire
from corral.domain.states import FinishedReason, TaskState
from corral.domain.stimuli import Ended, Reconnected, Reported
from corral.fleet import FleetBook, ForgetOrder, KillOrder, Stimulus
from tests.domain.factories import finished, task
from tests.fleet.fakes import (
    POLICY,
    FakeView,
    killed_ids,
    register,
    reports,
    settled_book,
    status,
    strangers,
)

S = TaskState
R = FinishedReason
NOW = 50.0


def test_a_reported_task_is_brought_up_to_date() -> None:
    view = FakeView().add(task("t1", S.LAUNCHED))
    d = view.step(register("h1", wire.TaskReport("t1", S.STARTED)), NOW)
    assert d.accept_session and d.refused is None
    assert d.stimuli == (("t1", Reported(S.STARTED, NOW)),)
    assert (d.kills, d.forget_after_commit, d.launch_after_commit) == ((), (), ())


def test_a_disconnected_task_reported_again_comes_back_not_replaced() -> None:
    # (port of test_an_agent_that_stops_heartbeating_goes_unreachable_and_its_tasks_come_back)
    view = FakeView().add(task("t1", S.DISCONNECTED, disconnected_from=S.STARTED))
    d = view.step(register("h1", *reports("t1")), NOW)
    assert d.stimuli == (Stimulus("t1", Reconnected(NOW)), Stimulus("t1", Reported(S.STARTED, NOW)))
    assert not any(isinstance(s.stimulus, Ended) for s in d.stimuli)


def test_a_finished_report_is_recorded_then_forgotten_after_commit() -> None:
    # (port of test_a_finished_report_is_forgotten_only_after_the_master_recorded_it)
    view = FakeView().add(task("t1", S.STARTED))
    report = wire.TaskReport("t1", S.FINISHED, None, "done", 0)
    d = view.step(register("h1", report), NOW)
    assert d.stimuli == (("t1", Reported(S.FINISHED, NOW, None, "done", 0)),)
    assert d.forget_after_commit == (ForgetOrder("h1", "t1"),)
    assert d.kills == ()


def test_a_task_being_killed_that_still_runs_is_killed_again_with_its_jobs_grace() -> None:
    view = FakeView(grace={"j1": 42.0}).add(task("t1", S.KILL_INITIATED, kill_reason=R.SCALED_DOWN))
    d = view.step(register("h1", *reports("t1")), NOW)
    assert d.kills == (KillOrder("h1", wire.KillSpec("t1", R.SCALED_DOWN, 42.0)),)


def test_a_kill_of_a_disconnected_task_reaches_its_host_when_it_reconnects() -> None:
    t = task("t1", S.DISCONNECTED, disconnected_from=S.KILL_INITIATED, kill_reason=R.KILLED)
    d = FakeView().add(t).step(register("h1", *reports("t1")), NOW)
    assert [s.stimulus for s in d.stimuli] == [Reconnected(NOW), Reported(S.STARTED, NOW)]
    assert killed_ids(d) == {"t1"}


def test_a_task_being_killed_that_finished_is_forgotten_not_killed() -> None:
    view = FakeView().add(task("t1", S.KILL_INITIATED, kill_reason=R.KILLED))
    d = view.step(register("h1", wire.TaskReport("t1", S.FINISHED, exit_code=137)), NOW)
    assert d.kills == () and d.forget_after_commit == (("h1", "t1"),)


def test_a_task_being_killed_that_is_gone_ends_with_its_kill_reason() -> None:
    view = FakeView().add(task("t1", S.KILL_INITIATED, kill_reason=R.SCALED_DOWN))
    d = view.step(register("h1"), NOW)
    assert d.stimuli == (("t1", Ended(R.SCALED_DOWN, NOW, "gone from its host when it reconnected")),)


def test_a_launch_lost_on_the_way_is_sent_again_not_counted_lost() -> None:
    # (port of test_a_launch_lost_on_the_way_is_sent_again_not_counted_lost)
    view = FakeView().add(task("t1", S.LAUNCHED), task("t2", S.LAUNCHED))
    d = view.step(register("h1"), NOW)
    assert d.launch_after_commit == ("t1", "t2")
    assert d.stimuli == ()


def test_a_disconnected_launch_is_reconnected_then_sent_again() -> None:
    view = FakeView().add(task("t1", S.DISCONNECTED, disconnected_from=S.LAUNCHED))
    d = view.step(register("h1"), NOW)
    assert d.stimuli == (("t1", Reconnected(NOW)),)
    assert d.launch_after_commit == ("t1",)


def test_a_started_task_the_agent_no_longer_runs_is_lost() -> None:
    view = FakeView().add(task("t1", S.STARTED), task("t2", S.START_INITIATED))
    d = view.step(register("h1"), NOW)
    lost = Ended(R.LOST, NOW, "host h1 reconnected without it")
    assert d.stimuli == (("t1", lost), ("t2", lost))
    assert d.launch_after_commit == ()


def test_tasks_on_other_hosts_are_not_touched_by_a_registration() -> None:
    view = FakeView().add(task("t1", S.STARTED, host_id="h2"))
    d = view.step(register("h1"), NOW)
    assert d.stimuli == () and d.kills == ()


def test_a_registered_host_is_no_longer_awaited_and_counts_for_the_quorum() -> None:
    book = FleetBook.at_start(0.0, True, ["h1", "h2"], POLICY.lost_after_s)
    view = FakeView(book=book)
    d = view.step(register("h1", *reports(("x", S.FINISHED)), *strangers("h1", 2)), 1.0)
    assert dict(d.book.awaiting) == {"h2": 120.0}
    assert d.book.reported == {"h1"}
    assert d.book.reported_running == {"h1": 2}  # finished tasks do not count as running
    d = view.step(register("h9"), 2.0)
    assert d.book.reported == {"h1"}  # a host it did not expect does not count for the quorum


# -- rule 2: tasks the leader does not place on this host ---------------------------------------------


def test_a_task_the_master_placed_elsewhere_is_killed_and_not_counted_as_unknown() -> None:
    view = FakeView().add(task("t1", S.STARTED, host_id="h2"))
    d = view.step(register("h1", *reports("t1")), NOW)
    assert d.kills == (KillOrder("h1", wire.KillSpec("t1", R.KILLED, 0.0)),)
    assert d.book.killed == frozenset() and d.alerts_raised == ()
    assert d.stimuli == ()  # the task on h2 is left alone


def test_a_task_the_master_finished_is_killed_where_it_still_runs() -> None:
    view = FakeView().add(finished("t1", R.LOST, 10.0, host_id="h1"))
    d = view.step(register("h1", *reports("t1")), NOW)
    assert killed_ids(d) == {"t1"} and d.book.killed == frozenset()


def test_a_task_the_store_says_finished_is_killed_and_not_counted() -> None:
    many = strangers("h1", 20)
    done = {r.task_id for r in many}
    d = FakeView().step(register("h1", *many, finished_in_store=done), NOW)
    assert killed_ids(d) == done  # 20 > the budget of 5, but these are not unknown: the store knows them
    assert d.alerts_raised == () and not d.book.tripped


def test_a_finished_report_of_a_task_not_placed_here_is_forgotten() -> None:
    d = FakeView().step(register("h1", *reports(("old", S.FINISHED))), NOW)
    assert d.forget_after_commit == (("h1", "old"),)
    assert d.kills == () and d.alerts_raised == ()


def test_a_tolerated_task_is_left_alone_and_forgotten_once_it_finishes() -> None:
    view = FakeView(book=settled_book(tolerated=frozenset({"keep-me"})))
    d = view.step(register("h1", *reports("keep-me")), NOW)
    assert d.kills == () and d.alerts_raised == () and d.book.held == ()
    d = view.step(status("h1", *reports(("keep-me", S.FINISHED))), NOW)
    assert d.forget_after_commit == (("h1", "keep-me"),)


def test_a_few_unknown_tasks_are_killed_but_many_raise_an_alert_and_nothing_is_killed() -> None:
    # (port of test_a_few_unknown_tasks_are_killed_but_many_raise_an_alert_and_nothing_is_killed)
    view = FakeView()
    few = view.step(register("host-few", *reports("ghost-0", "ghost-1")), NOW)
    assert killed_ids(few) == {"ghost-0", "ghost-1"} and few.alerts_raised == ()

    view = FakeView()
    many = view.step(register("host-many", *reports(*(f"stranger-{i}" for i in range(12)))), NOW)
    assert many.kills == ()
    [alert] = many.book.alerts
    assert alert.host_id == "host-many" and len(alert.unknown_tasks) == 12
    assert "none were killed" in alert.message


# -- status reports ------------------------------------------------------------------------------------


def test_a_status_report_updates_the_hosts_own_tasks() -> None:
    view = FakeView().add(task("t1", S.START_INITIATED), task("t2", S.KILL_INITIATED, kill_reason=R.KILLED))
    view.connect("h1")
    d = view.step(status("h1", *reports("t1", "t2", ("t3", S.FINISHED))), NOW)
    assert d.stimuli == (("t1", Reported(S.STARTED, NOW)), ("t2", Reported(S.STARTED, NOW)))
    assert killed_ids(d) == {"t2"}
    assert d.forget_after_commit == (("h1", "t3"),)


def test_a_status_report_of_a_task_finished_on_this_host_kills_it() -> None:
    # Today's hub only forgot it (the agent would keep running a task the master had ended).
    view = FakeView().add(finished("t1", R.LOST, 10.0, host_id="h1"))
    view.connect("h1")
    d = view.step(status("h1", *reports("t1")), NOW)
    assert killed_ids(d) == {"t1"} and d.forget_after_commit == ()


def test_status_unknown_tasks_fall_to_the_unknown_task_rule() -> None:
    view = FakeView()
    view.connect("h1")
    assert killed_ids(view.step(status("h1", *strangers("h1", 2)), NOW)) == {"ghost-h1-0", "ghost-h1-1"}
    d = view.step(status("h1", *strangers("h1", 6, "more")), NOW)
    assert d.kills == () and len(d.alerts_raised) == 1


def test_a_status_report_from_a_replaced_session_is_ignored() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.connect("h1", session_id="new")
    d = view.step(status("h1", *reports(("t1", S.FINISHED), "ghost"), session="old"), NOW)
    assert (d.stimuli, d.kills, d.forget_after_commit, d.book) == ((), (), (), view.book)
