"""fleet/protocol.py, rule 4: heartbeats, disconnects and the deadline of hosts a new leader waits for."""

from __future__ import annotations

from corral.domain.states import FinishedReason, TaskState
from corral.domain.stimuli import Ended, HostLost
from corral.fleet import Decision, Disconnected, FleetBook, SessionClose, Tick, Unreachable, next_deadline
from tests.domain.factories import task
from tests.fleet.fakes import POLICY, FakeView, own, register, strangers

S = TaskState
R = FinishedReason


def test_a_silent_agent_is_closed_and_its_tasks_disconnected() -> None:
    # (port of test_an_agent_that_stops_heartbeating_goes_unreachable_and_its_tasks_come_back)
    view = FakeView().add(task("t1", S.STARTED), task("t2", S.LAUNCHED), task("t3", S.STARTED, host_id="h2"))
    view.connect("h1", at=0.0)
    view.connect("h2", at=5.0)
    d = view.step(Tick(), 12.5)
    assert d.close_sessions == (SessionClose("h1", "h1/s", "no heartbeat for 12.5s"),)
    assert d.unreachable == (Unreachable("h1", "missed heartbeats for 12.5s"),)
    lost = HostLost(12.5, "host h1 unreachable: missed heartbeats for 12.5s")
    assert d.stimuli == (("t1", lost), ("t2", lost))
    assert set(view.sessions) == {"h2"}


def test_an_agent_that_heartbeats_is_left_alone() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.connect("h1", at=0.0)
    view.beat(5.0)
    d = view.step(Tick(), 14.9)
    assert d == Decision(view.book)


def test_the_disconnect_of_the_current_session_makes_the_host_unreachable() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.step(register("h1"), 1.0)
    d = view.step(Disconnected("h1", "h1/s", "connection reset"), 2.0)
    assert d.unreachable == (("h1", "connection reset"),)
    assert d.stimuli == (("t1", HostLost(2.0, "host h1 unreachable: connection reset")),)
    assert d.close_sessions == (("h1", "h1/s", "connection reset"),) and view.sessions == {}


def test_the_disconnect_of_a_replaced_session_changes_nothing() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.step(register("h1", session="old"), 1.0)
    replaced = view.step(register("h1", session="new", credential=own("h1")), 2.0)
    assert replaced.close_sessions == (("h1", "old", "replaced by a new connection from the same agent"),)
    d = view.step(Disconnected("h1", "old", "replaced"), 3.0)
    assert d == Decision(view.book)
    assert view.sessions["h1"].session_id == "new"


def test_a_disconnect_of_a_host_never_accepted_changes_nothing() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    assert view.step(Disconnected("h1", "h1/s", "refused"), 1.0).stimuli == ()


def test_a_leader_awaits_the_hosts_its_state_places_tasks_on() -> None:
    book = FleetBook.at_start(100.0, True, ["h1", "h2"], POLICY.lost_after_s)
    assert (book.took_office_at, book.expected, dict(book.awaiting)) == (
        100.0,
        {"h1", "h2"},
        {"h1": 220.0, "h2": 220.0},
    )


def test_an_awaited_host_that_does_not_come_back_in_time_has_its_tasks_ended() -> None:
    view = FakeView(book=FleetBook.at_start(0.0, True, ["h1", "h2"], POLICY.lost_after_s))
    view.add(task("t1", S.STARTED), task("t2", S.KILL_INITIATED, kill_reason=R.SCALED_DOWN))
    view.add(task("t3", S.STARTED, host_id="h2"))
    view.step(register("h2"), 10.0)
    view.beat(119.0)
    assert view.step(Tick(), 119.0).stimuli == ()
    view.beat(120.0)
    d = view.step(Tick(), 120.0)
    never = "host h1 did not come back within 120s"
    assert d.stimuli == (("t1", Ended(R.LOST, 120.0, never)), ("t2", Ended(R.SCALED_DOWN, 120.0, never)))
    assert dict(view.book.awaiting) == {}
    assert view.step(Tick(), 121.0).stimuli == ()  # once


def test_the_next_deadline_is_the_first_awaited_host_or_heartbeat() -> None:
    view = FakeView(book=FleetBook.at_start(0.0, True, ["h1"], POLICY.lost_after_s))
    assert next_deadline(view.book, view, POLICY) == 120.0
    view.connect("h2", at=3.0)
    assert next_deadline(view.book, view, POLICY) == 13.0
    assert next_deadline(FleetBook(took_office_at=0.0), FakeView(), POLICY) is None


def test_the_next_deadline_includes_the_end_of_settling_only_when_held_tasks_wait_for_it() -> None:
    view = FakeView(book=FleetBook.at_start(0.0, True, (), POLICY.lost_after_s))
    assert next_deadline(view.book, view, POLICY) is None  # nothing held: no reason to wake up
    view.step(register("h1", *strangers("h1", 1)), 1.0)
    view.beat(29.0)
    assert next_deadline(view.book, view, POLICY) == 30.0


def test_a_tick_after_the_leaders_own_stall_judges_no_host_silent() -> None:
    """Found under load: the leader's loop stalled 15 s; the heartbeats of that time waited unread in its
    sockets, so that silence was the leader's own. Silence counts up to when the leader last listened
    (the tick's due time); a dead agent is still found, its silence growing tick by tick."""
    view = FakeView().add(task("t1", S.STARTED))
    view.connect("h1", at=0.0)
    late = view.step(Tick(late_s=POLICY.heartbeat_timeout_s), 12.5)
    assert (late.close_sessions, late.unreachable, late.stimuli) == ((), (), ())
    assert any("stalled" in line.message for line in late.logs)
    assert set(view.sessions) == {"h1"}
    view.beat(12.6)  # what the stall held back is read: the agent was alive all along
    assert view.step(Tick(), 13.0).unreachable == ()
    # Still silent after a tick on time: unreachable, as before; and even when every tick is late.
    assert view.step(Tick(late_s=3.0), 12.6 + POLICY.heartbeat_timeout_s + 1.0).unreachable == ()
    assert view.step(Tick(late_s=6.0), 12.6 + POLICY.heartbeat_timeout_s + 6.0).unreachable != ()


def test_a_tick_a_little_late_judges_as_usual() -> None:
    view = FakeView().add(task("t1", S.STARTED))
    view.connect("h1", at=0.0)
    d = view.step(Tick(late_s=0.5), 12.5)
    assert d.unreachable == (Unreachable("h1", "missed heartbeats for 12.0s"),)
