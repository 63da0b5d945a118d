"""jobs/task_machine.py: forward-only states, dropped duplicates, kills, disconnects."""

from __future__ import annotations

import pytest

from corral.domain.states import FinishedReason, TaskState
from corral.domain.stimuli import Ended, HostLost, KillRequested, Placed, Reconnected, Reported, TaskStimulus
from corral.domain.task import Task
from corral.jobs.task_machine import HISTORY_LIMIT, transition
from tests.domain.factories import task

S = TaskState
R = FinishedReason


def step(t: Task, *events: TaskStimulus) -> Task:
    """Apply ``events`` in order, each of which must apply."""
    for event in events:
        after = transition(t, event)
        assert after is not None, f"{event} was dropped in state {t.state}"
        t = after
    return t


def started(at: float = 10.0) -> Task:
    return step(task(), Placed("h1", 1.0, (31000,)), Reported(S.STARTED, at))


def test_placed_launches_on_the_host() -> None:
    t = step(task(), Placed("h7", 5.0, (31000, 31001)))
    assert (t.state, t.host_id, t.ports, t.updated_at) == (S.LAUNCHED, "h7", (31000, 31001), 5.0)
    assert [e.state for e in t.history] == [S.LAUNCHED]


def test_placed_twice_is_dropped() -> None:
    assert transition(step(task(), Placed("h1", 1.0)), Placed("h2", 2.0)) is None


def test_reports_move_forward_and_started_records_the_start() -> None:
    t = step(task(), Placed("h1", 1.0), Reported(S.START_INITIATED, 2.0), Reported(S.STARTED, 3.0))
    assert (t.state, t.started_at, t.updated_at) == (S.STARTED, 3.0, 3.0)
    assert [e.state for e in t.history] == [S.LAUNCHED, S.START_INITIATED, S.STARTED]


def test_a_report_may_skip_states() -> None:
    assert step(task(), Placed("h1", 1.0), Reported(S.STARTED, 2.0)).state is S.STARTED


@pytest.mark.parametrize("state", [S.LAUNCHED, S.START_INITIATED, S.STARTED])
def test_stale_and_duplicate_reports_are_dropped(state: TaskState) -> None:
    assert transition(started(), Reported(state, 20.0)) is None


def test_reports_for_an_unplaced_task_are_dropped() -> None:
    assert transition(task(), Reported(S.STARTED, 1.0)) is None


def test_disconnected_is_not_reportable() -> None:
    assert transition(started(), Reported(S.DISCONNECTED, 20.0)) is None


@pytest.mark.parametrize(
    ("exit_code", "reason"), [(0, R.NORMAL), (1, R.FAILED), (137, R.FAILED), (None, R.FAILED)]
)
def test_finished_reason_follows_the_exit_code(exit_code: int | None, reason: FinishedReason) -> None:
    t = step(started(), Reported(S.FINISHED, 30.0, exit_code=exit_code, detail="bye"))
    assert (t.state, t.reason, t.exit_code, t.finished_at, t.reason_detail) == (
        S.FINISHED,
        reason,
        exit_code,
        30.0,
        "bye",
    )


def test_the_agents_reason_wins_over_the_exit_code() -> None:
    t = step(started(), Reported(S.FINISHED, 30.0, R.CRASHED, exit_code=0))
    assert t.reason is R.CRASHED


EVERYTHING: list[TaskStimulus] = [
    Placed("h2", 50.0),
    Reported(S.STARTED, 50.0),
    Reported(S.FINISHED, 50.0, exit_code=0),
    KillRequested(R.KILLED, 50.0),
    HostLost(50.0),
    Reconnected(50.0),
    Ended(R.LOST, 50.0),
]


@pytest.mark.parametrize("event", EVERYTHING, ids=lambda e: type(e).__name__)
def test_finished_is_terminal(event: TaskStimulus) -> None:
    done = step(started(), Reported(S.FINISHED, 30.0, exit_code=1))
    assert transition(done, event) is None


def test_kill_of_an_accepted_task_finishes_it_at_once() -> None:
    t = step(task(), KillRequested(R.SCALED_DOWN, 4.0, "scaled down to 0"))
    assert (t.state, t.reason, t.reason_detail, t.finished_at) == (
        S.FINISHED,
        R.SCALED_DOWN,
        "scaled down to 0",
        4.0,
    )


def test_kill_of_a_running_task_waits_for_the_agent_and_uses_the_kill_reason() -> None:
    killing = step(started(), KillRequested(R.SCALED_DOWN, 20.0, "scaled down to 1"))
    assert (killing.state, killing.kill_reason) == (S.KILL_INITIATED, R.SCALED_DOWN)
    done = step(killing, Reported(S.FINISHED, 21.0, detail="exited 143", exit_code=143))
    assert (done.reason, done.reason_detail, done.exit_code) == (R.SCALED_DOWN, "scaled down to 1", 143)


def test_kill_reason_wins_even_over_a_clean_exit() -> None:
    killing = step(started(), KillRequested(R.RUNTIME_LIMIT_EXCEEDED, 20.0))
    done = step(killing, Reported(S.FINISHED, 21.0, detail="exited 0", exit_code=0))
    assert (done.reason, done.reason_detail) == (R.RUNTIME_LIMIT_EXCEEDED, "exited 0")


def test_a_second_kill_is_dropped() -> None:
    killing = step(started(), KillRequested(R.KILLED, 20.0))
    assert transition(killing, KillRequested(R.SCALED_DOWN, 21.0)) is None


def test_agents_kill_initiated_after_a_kill_is_a_duplicate() -> None:
    killing = step(started(), KillRequested(R.KILLED, 20.0))
    assert transition(killing, Reported(S.KILL_INITIATED, 21.0)) is None


def test_host_lost_side_trips_to_disconnected_keeping_the_rank() -> None:
    t = step(started(), HostLost(20.0, "heartbeats missed"))
    assert (t.state, t.disconnected_from, t.effective_state, t.rank) == (
        S.DISCONNECTED,
        S.STARTED,
        S.STARTED,
        3,
    )
    assert t.on_host


def test_host_lost_twice_or_before_placement_is_dropped() -> None:
    assert transition(step(started(), HostLost(20.0)), HostLost(21.0)) is None
    assert transition(task(), HostLost(1.0)) is None


def test_reconnected_restores_the_state_left() -> None:
    t = step(started(), HostLost(20.0), Reconnected(25.0))
    assert (t.state, t.disconnected_from, t.updated_at) == (S.STARTED, None, 25.0)


def test_reconnected_without_a_disconnect_is_dropped() -> None:
    assert transition(started(), Reconnected(20.0)) is None


def test_kill_while_disconnected_is_remembered_without_moving_the_lost_deadline() -> None:
    away = step(started(), HostLost(20.0))
    t = step(away, KillRequested(R.KILLED, 30.0, "job killed"))
    assert (t.state, t.kill_reason, t.disconnected_from, t.updated_at) == (
        S.DISCONNECTED,
        R.KILLED,
        S.KILL_INITIATED,
        20.0,
    )
    assert step(t, Reconnected(40.0)).state is S.KILL_INITIATED


def test_finished_report_after_a_kill_while_disconnected_uses_the_kill_reason() -> None:
    t = step(started(), HostLost(20.0), KillRequested(R.KILLED, 30.0, "job killed"))
    done = step(t, Reported(S.FINISHED, 40.0, exit_code=0))
    assert (done.reason, done.reason_detail, done.disconnected_from) == (R.KILLED, "job killed", None)


def test_report_while_disconnected_is_ranked_against_the_state_left() -> None:
    away = step(task(), Placed("h1", 1.0), Reported(S.START_INITIATED, 2.0), HostLost(3.0))
    assert transition(away, Reported(S.LAUNCHED, 4.0)) is None
    back = step(away, Reported(S.START_INITIATED, 4.0))
    assert (back.state, back.disconnected_from) == (S.START_INITIATED, None)
    ahead = step(away, Reported(S.STARTED, 4.0))
    assert (ahead.state, ahead.started_at, ahead.disconnected_from) == (S.STARTED, 4.0, None)


@pytest.mark.parametrize("reason", [R.LOST, R.STUCK_IN_STATE, R.KILLED])
def test_ended_finishes_without_the_agent(reason: FinishedReason) -> None:
    t = step(started(), HostLost(20.0), Ended(reason, 140.0, "gone"))
    assert (t.state, t.reason, t.reason_detail, t.disconnected_from, t.exit_code) == (
        S.FINISHED,
        reason,
        "gone",
        None,
        None,
    )


def test_history_is_capped_and_keeps_its_first_line() -> None:
    t = started()
    for i in range(HISTORY_LIMIT):
        t = step(t, HostLost(100.0 + i), Reconnected(100.5 + i))
    assert len(t.history) == HISTORY_LIMIT
    assert t.history[0].state is S.LAUNCHED
    assert t.history[-1].at == 100.5 + HISTORY_LIMIT - 1
