"""Hypothesis properties of the reconcilers and the task state machine, driven through the simulator.

Random event sequences play the scheduler, agents (reports, lost hosts), the clock and the user
(kills, resizes); after each event the simulator reconciles the job to a fixpoint.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.job import RetryKind, RetryPolicy
from corral.domain.states import FinishedReason, JobState, TaskState
from corral.domain.stimuli import Ended, HostLost, KillRequested, Placed, Reconnected, Reported, TaskStimulus
from corral.jobs import JobManagerConfig, reconcile
from corral.jobs.task_machine import transition
from tests.domain.factories import batch_job, service_job, task
from tests.jobs.simulator import Event, Sim

S = TaskState
R = FinishedReason
CFG = JobManagerConfig(
    launched_timeout_s=20.0,
    start_initiated_timeout_s=40.0,
    kill_initiated_extra_s=5.0,
    lost_after_s=25.0,
    system_retry_initial_s=1.0,
    system_retry_max_s=20.0,
    service_stable_after_s=15.0,
    crash_loop_initial_s=1.0,  # the crash-loop backoff stays on, short enough for a settle round to pass it
    crash_loop_max_s=20.0,
    max_unstarted_tasks_per_job=10,  # low enough to bite, high enough for the settle rounds to converge
)
PROPERTY = settings(max_examples=150, deadline=None)

small = st.integers(0, 30)


def events(*kinds: str) -> st.SearchStrategy[list[Event]]:
    """Event lists, each kind as likely as it is repeated in ``kinds``."""
    return st.lists(st.tuples(st.sampled_from(kinds), small, small), min_size=10, max_size=80)


AGENT = ("place",) * 3 + ("report",) * 4 + ("lose", "reconnect", "advance", "advance")
USER = ("kill_task", "resize", "resize", "enable")
batch_events = events(*AGENT, "kill_task")
service_events = events(*AGENT, *USER)
policies = st.builds(
    RetryPolicy,
    st.sampled_from(RetryKind),
    st.integers(0, 3),
    st.integers(0, 3000),
    st.integers(0, 3000),
    st.integers(3000, 8000),
)


@st.composite
def batch_sims(draw: st.DrawFn) -> Sim:
    job = batch_job(
        size=draw(st.integers(1, 4)),
        retry=draw(policies),
        runtime_limit_s=draw(st.none() | st.integers(10, 50)),
        retry_on_runtime_limit=draw(st.booleans()),
        kill_grace_period_s=5,
    )
    sim = Sim(job, CFG)
    sim.reconcile()
    return sim


@st.composite
def service_sims(draw: st.DrawFn) -> Sim:
    desired = draw(st.integers(0, 4))
    sim = Sim(service_job(desired, max=desired + 2, retry=draw(policies)), CFG)
    sim.reconcile()
    return sim


def live_per_index(sim: Sim) -> Counter[int | None]:
    return Counter(t.index for t in sim.live())


def desired(sim: Sim) -> int:
    spec = sim.job.descriptor.service
    assert spec is not None
    return spec.capacity.desired if spec.enabled else 0


def counted(sim: Sim) -> list[str]:
    """The tasks a service counts towards its size: live and not being killed."""
    return [t.id for t in sim.live() if t.kill_reason is None]


# (a) -------------------------------------------------------------------------------------------


@PROPERTY
@given(batch_sims(), batch_events, st.booleans())
def test_batch_never_runs_two_live_tasks_for_one_index(sim: Sim, events: list[Event], kill: bool) -> None:
    if kill:
        events = [*events[: len(events) // 2], ("kill_job", 0, 0), *events[len(events) // 2 :]]
    for event in events:
        sim.play(event)
        assert all(n == 1 for n in live_per_index(sim).values()), sim.live()
        if sim.job.state is JobState.FINISHED:
            assert sim.live() == []


# (b) -------------------------------------------------------------------------------------------


@PROPERTY
@given(service_sims(), service_events)
def test_service_converges_to_desired(sim: Sim, events: list[Event]) -> None:
    for event in events:
        sim.play(event)
        assert len(counted(sim)) <= desired(sim)
    # Failures stop: hosts return, tasks start, kills are confirmed, time passes every backoff.
    for _ in range(4):
        sim.settle_round()
        assert len(counted(sim)) <= desired(sim)
    assert len(counted(sim)) == desired(sim)
    assert [t.state for t in sim.live()] == [S.STARTED] * desired(sim)


# (c) -------------------------------------------------------------------------------------------


@PROPERTY
@given(batch_sims(), batch_events, st.lists(st.sampled_from([0, 1, 137]), min_size=1, max_size=6))
def test_batch_finishes_normal_iff_every_index_succeeded(
    sim: Sim, events: list[Event], exit_codes: list[int]
) -> None:
    for event in events:
        sim.play(event)
    spec = sim.job.descriptor.batch
    assert spec is not None
    # Tasks keep finishing: every round, everything runs and exits with the next code.
    for rounds in range(3 * (spec.retry_policy.retries + 2)):
        if sim.job.state is JobState.FINISHED:
            break
        sim.settle_round(exit_codes[rounds % len(exit_codes)])
    assert sim.job.state is JobState.FINISHED, "the batch job never finished"
    normal = {t.index for t in sim.tasks.values() if t.reason is R.NORMAL}
    assert (sim.job.reason is R.NORMAL) == (normal == set(range(spec.size)))
    assert sim.job.reason in (R.NORMAL, R.FAILED)
    assert sim.live() == []


# (d) -------------------------------------------------------------------------------------------
# Sim.observe checks every task after every change; these drive it hard with both job types.


@PROPERTY
@given(st.one_of(batch_sims(), service_sims()), service_events)
def test_states_never_go_backwards(sim: Sim, events: list[Event]) -> None:
    for event in events:
        before = {t.id: t for t in sim.tasks.values()}
        sim.play(event)
        for old in before.values():
            new = sim.tasks[old.id]
            if old.is_finished:
                assert new == old  # finished is terminal
            assert new.rank >= old.rank
            assert len(new.history) >= min(len(old.history), 64)


# wake_at -----------------------------------------------------------------------------------------
# The shell sleeps until wake_at; a deadline it misses would leave a task stuck for good.


@PROPERTY
@given(st.one_of(batch_sims(), service_sims()), service_events, st.floats(0.0, 1.0))
def test_nothing_is_due_before_wake_at_and_something_is_at_it(
    sim: Sim, events: list[Event], f: float
) -> None:
    for event in events:
        sim.play(event)
    tasks = list(sim.tasks.values())
    result = reconcile(sim.job, tasks, sim.now, CFG)
    assert result.actions == ()
    if sim.job.state is JobState.FINISHED:
        return
    if result.wake_at is None:
        assert reconcile(sim.job, tasks, sim.now + 1e6, CFG).actions == ()
        return
    assert result.wake_at > sim.now
    before = sim.now + f * (result.wake_at - sim.now)
    if before < result.wake_at:
        assert reconcile(sim.job, tasks, before, CFG).actions == ()
    assert reconcile(sim.job, tasks, result.wake_at, CFG).actions != ()


times = st.integers(0, 1000).map(float)
stimuli = st.one_of(
    st.builds(Placed, st.sampled_from(["h1", "h2"]), times),
    st.builds(
        Reported,
        st.sampled_from(TaskState),
        times,
        st.none() | st.sampled_from(R),
        st.just(""),
        st.none() | st.integers(0, 2),
    ),
    st.builds(KillRequested, st.sampled_from(R), times),
    st.builds(HostLost, times),
    st.builds(Reconnected, times),
    st.builds(Ended, st.sampled_from(R), times),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(stimuli, max_size=30))
def test_any_stimulus_sequence_keeps_a_task_moving_forward(events: list[TaskStimulus]) -> None:
    t = task("t", index=None)
    for event in events:
        after = transition(t, event)
        if after is None:
            continue
        assert not t.is_finished, "finished is terminal"
        assert after.rank >= t.rank, f"{t.effective_state} -> {after.effective_state} on {event}"
        assert len(after.history) == len(t.history) + 1
        if t.kill_reason is not None:
            assert after.kill_reason == t.kill_reason
            if after.is_finished and isinstance(event, Reported):
                assert after.reason == t.kill_reason
        if after.state is TaskState.DISCONNECTED:
            assert after.disconnected_from is not None
        t = after


def test_a_restart_within_one_clock_tick_finishes_its_index() -> None:
    # The scenario behind (c)'s rarest failure, spelled out: a task killed before placement is
    # restarted at the same instant, and the restart succeeds before the clock moves.
    sim = Sim(batch_job(), CFG)
    sim.reconcile()
    for event in [("kill_task", 0, 0), ("place", 0, 0), ("report", 0, 1), ("report", 0, 2)]:
        sim.play(event)
    assert (sim.job.state, sim.job.reason) == (JobState.FINISHED, R.NORMAL)
    assert sorted(t.reason for t in sim.tasks.values() if t.reason) == [R.KILLED, R.NORMAL]
