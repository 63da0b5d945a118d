"""The drain planner: make before break for services, unready tasks stopped at once without budget, batch
tasks after the drain deadline, abandoned replacements, and a wait with its reason for every other task."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from corral.disruption.relocation import DrainingHost, RelocationPlan, StartRelocation, plan
from corral.domain.disruption import DisruptionBudget, RatePerInterval, SelfManaged, TimeWindow
from corral.domain.health import HealthChecks, HealthStatus, HttpProbe, Probe, ProbeResult
from corral.domain.job import Job
from corral.domain.states import FinishedReason, JobState, TaskState
from corral.domain.task import Task
from tests.domain.factories import batch_job, service_job, task

S = TaskState
NOW = 10_000.0
READINESS = HealthChecks(readiness=Probe(http=HttpProbe()))


def svc(desired: int, budget: DisruptionBudget | None = None, job_id: str = "j1", **changes: Any) -> Job:
    job = service_job(desired=desired, max=desired + 10, job_id=job_id)
    health = changes.pop("health", None)
    container = replace(job.descriptor.container, health=health)
    return replace(
        job, descriptor=replace(job.descriptor, disruption_budget=budget, container=container), **changes
    )


def batch(size: int, budget: DisruptionBudget | None = None, job_id: str = "b1", **changes: Any) -> Job:
    job = batch_job(size=size, job_id=job_id)
    return replace(job, descriptor=replace(job.descriptor, disruption_budget=budget), **changes)


def up(task_id: str, host: str, job_id: str = "j1", **changes: Any) -> Task:
    """A running task on ``host`` (ready when its job has no readiness probe)."""
    index = changes.pop("index", None)
    return task(task_id, S.STARTED, index=index, job_id=job_id, host_id=host, started_at=1.0, **changes)


def drain(*hosts: str, since: float = NOW - 100, deadline_s: float = 600.0) -> dict[str, DrainingHost]:
    return {h: DrainingHost(h, since, deadline_s) for h in hosts}


def started(p: RelocationPlan) -> list[str]:
    return [s.task_id for s in p.start]


def stopped(p: RelocationPlan) -> list[str]:
    return [s.task_id for s in p.stop]


def kinds(p: RelocationPlan) -> dict[str, str]:
    return {task_id: w.kind for task_id, w in p.waits.items()}


# --- services: make before break


def test_a_ready_service_task_on_a_draining_host_gets_a_replacement_first() -> None:
    job = svc(3)
    tasks = [up("t1", "h1"), up("t2", "h2"), up("t3", "h3")]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert p.start == (StartRelocation("t1", "j1", "h1"),)
    assert p.stop == ()
    assert p.waits == {}


def test_only_as_many_start_as_the_budget_allows_and_the_rest_say_why() -> None:
    job = svc(4, DisruptionBudget(availability_percentage=75))
    tasks = [up("t1", "h1"), up("t2", "h1"), up("t3", "h2"), up("t4", "h3")]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert started(p) == ["t1"]
    wait = p.waits["t2"]
    assert (wait.kind, wait.job_id, wait.host_id) == ("budget", "j1", "h1")
    assert (
        wait.detail
        == "disruption budget: 3 of 4 tasks must stay ready (availability 75 %), 4 are and 1 is being moved"
    )
    assert p.next_at is None


def test_candidates_go_oldest_drain_first_then_by_host_and_task() -> None:
    job = svc(6, DisruptionBudget(unhealthy_tasks=3))
    tasks = [up("a", "h1"), up("c", "h2"), up("b", "h2"), up("d", "h3"), up("e", "h0"), up("f", "h9")]
    draining = {
        "h1": DrainingHost("h1", NOW - 50, 600),
        "h2": DrainingHost("h2", NOW - 90, 600),
        "h3": DrainingHost("h3", NOW - 50, 600),
        "h0": DrainingHost("h0", NOW - 10, 600),
    }
    p = plan(draining, [(job, tasks)], NOW)
    assert started(p) == ["b", "c", "a"]
    assert kinds(p) == {"d": "budget", "e": "budget"}


def test_a_task_whose_replacement_is_not_ready_waits_and_uses_the_budget() -> None:
    job = svc(3)
    tasks = [
        up("t1", "h1", relocating_to="r1"),
        up("t2", "h1"),
        up("t3", "h2"),
        task("r1", S.LAUNCHED, index=None, host_id="h5"),
    ]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert p.start == () and p.stop == ()
    assert p.waits["t1"].kind == "replacement"
    assert p.waits["t1"].detail == "its replacement r1 is starting on h5"
    assert p.waits["t2"].kind == "budget"  # one at a time: t1's move is in flight


def test_a_replacement_not_ready_yet_is_described_with_its_probes() -> None:
    job = svc(2, health=READINESS)
    probes = ProbeResult(ready=HealthStatus.UNKNOWN, detail="GET / on port 0: connection refused")
    tasks = [
        up("t1", "h1", relocating_to="r1", ready_since=2.0),
        up("t2", "h2", ready_since=2.0),
        up("r1", "h5", probes=probes),
    ]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert (
        p.waits["t1"].detail
        == "its replacement r1 is running on h5, not ready: GET / on port 0: connection refused"
    )
    pending = plan(drain("h1"), [(job, [*tasks[:2], task("r1", S.ACCEPTED, index=None)])], NOW)
    assert pending.waits["t1"].detail == "its replacement r1 is waiting to be placed"


def test_once_the_replacement_is_ready_the_old_task_stops_and_the_next_starts() -> None:
    job = svc(3)
    tasks = [up("t1", "h1", relocating_to="r1"), up("t2", "h1"), up("t3", "h2"), up("r1", "h5")]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert [(s.task_id, s.detail, s.job_id, s.reason) for s in p.stop] == [
        ("t1", "its replacement r1 is ready on h5", "j1", FinishedReason.RELOCATED)
    ]
    assert started(p) == ["t2"]  # the stop frees t1's share in the same plan
    assert p.waits == {}


def test_a_move_once_started_completes_even_if_the_host_is_no_longer_draining() -> None:
    job = svc(2)
    tasks = [up("t1", "h1", relocating_to="r1"), up("t2", "h2"), up("r1", "h5")]
    p = plan({}, [(job, tasks)], NOW)
    assert stopped(p) == ["t1"]
    pending = plan({}, [(job, [*tasks[:2], task("r1", S.LAUNCHED, index=None, host_id="h5")])], NOW)
    assert pending == RelocationPlan()


# --- services: unready tasks are stopped at once and use no budget


def test_an_unready_service_task_on_a_draining_host_is_stopped_at_once() -> None:
    job = svc(4, DisruptionBudget(availability_percentage=100), health=READINESS)
    tasks = [
        up("ready", "h1", ready_since=2.0),
        up("probing", "h1"),  # started, readiness not passed yet
        task("launching", S.LAUNCHED, index=None, host_id="h1"),
        up("dying", "h1", ready_since=2.0, probes=ProbeResult(live=HealthStatus.UNHEALTHY)),
        up("elsewhere", "h2"),  # not ready, but not on a draining host
    ]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert stopped(p) == ["probing", "launching", "dying"]
    assert p.stop[1].detail == "not ready (starting on h1): stopped at once, no budget used"
    assert p.start == ()
    assert kinds(p) == {"ready": "budget"}  # 100 % available: the ready one waits


def test_unready_tasks_do_not_use_the_budget_up() -> None:
    job = svc(4, DisruptionBudget(unhealthy_tasks=2))
    tasks = [
        up("a", "h1"),
        task("b", S.START_INITIATED, index=None, host_id="h1"),
        up("c", "h2"),
        up("d", "h2"),
    ]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert stopped(p) == ["b"]
    assert started(p) == ["a"]  # 2 - 1 unready = 1 left


def test_a_task_not_ready_while_its_replacement_starts_is_stopped() -> None:
    job = svc(2, health=READINESS)
    tasks = [up("t1", "h1", relocating_to="r1"), up("t2", "h2", ready_since=2.0), up("r1", "h5")]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert stopped(p) == ["t1"]
    assert p.waits == {}


def test_tasks_already_being_stopped_are_left_alone() -> None:
    job = svc(2)
    tasks = [
        up("t1", "h1", kill_reason=FinishedReason.KILLED),
        task("t2", S.KILL_INITIATED, index=None, host_id="h1", kill_reason=FinishedReason.RELOCATED),
        task("t3", S.FINISHED, index=None, host_id="h1"),
    ]
    assert plan(drain("h1"), [(job, tasks)], NOW) == RelocationPlan()


# --- services: failed replacements


def test_a_replacement_that_ended_is_abandoned_and_the_task_tried_again_later() -> None:
    job = svc(2)
    failed = task("r1", S.FINISHED, index=None, host_id="h5", reason=FinishedReason.FAILED)
    tasks = [up("t1", "h1", relocating_to="r1"), up("t2", "h2"), failed]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert p.abandon == ("t1",)
    assert p.start == () and p.stop == ()
    assert p.waits["t1"].kind == "replacement"
    assert p.waits["t1"].detail == "its replacement r1 ended (failed); it will be moved again"
    # The shell clears relocating_to; the next plan starts a new replacement.
    again = plan(drain("h1"), [(job, [replace(tasks[0], relocating_to=None), tasks[1], failed])], NOW)
    assert started(again) == ["t1"]


def test_a_replacement_gone_from_the_job_or_being_killed_is_abandoned() -> None:
    job = svc(3)
    killed = up("r2", "h5", kill_reason=FinishedReason.SCALED_DOWN)
    tasks = [up("t1", "h1", relocating_to="r1"), up("t2", "h1", relocating_to="r2"), up("t3", "h2"), killed]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert p.abandon == ("t1", "t2")
    assert p.waits["t1"].detail == "its replacement r1 is gone; it will be moved again"
    # Abandoned off a host no longer draining: only the pointer is cleared.
    assert plan({}, [(job, tasks)], NOW).abandon == ("t1", "t2")


# --- services: what else a task may wait for


def test_relocation_limit_reached_waits() -> None:
    job = svc(3, DisruptionBudget(relocation_limit=2))
    tasks = [up("t1", "h1", relocations=2), up("t2", "h1", relocations=1), up("t3", "h2")]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert started(p) == ["t2"]
    assert p.waits["t1"].kind == "relocation_limit"
    assert p.waits["t1"].detail == "moved 2 times, its job's limit is 2"


def test_self_managed_waits_for_each_host_own_timeout() -> None:
    job = svc(4, DisruptionBudget(self_managed=SelfManaged(relocation_timeout_s=300)))
    tasks = [up("t1", "h1"), up("t2", "h1"), up("t3", "h2"), up("t4", "h3")]
    draining = {"h1": DrainingHost("h1", NOW - 400, 600), "h2": DrainingHost("h2", NOW - 100, 600)}
    p = plan(draining, [(job, tasks)], NOW)
    assert started(p) == ["t1", "t2"]  # h1's timeout passed: unlimited
    assert p.waits["t3"].kind == "self_managed"
    assert p.waits["t3"].detail.endswith("(in 200 s)")
    assert p.next_at == NOW + 200


def test_rate_waits_say_when_the_next_may_start() -> None:
    budget = DisruptionBudget(unhealthy_tasks=5, rate_per_interval=RatePerInterval(tasks=1, interval_s=60))
    job = svc(5, budget, disruptions=(NOW - 45,))
    tasks = [up(f"t{i}", "h1") for i in range(5)]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    assert p.start == ()
    assert set(kinds(p).values()) == {"rate"}
    assert p.waits["t0"].detail == "rate: 1 disruption per 60 s already used, next in 15 s"
    assert p.next_at == NOW + 15


def test_the_rate_counts_the_starts_of_this_plan() -> None:
    budget = DisruptionBudget(unhealthy_tasks=5, rate_per_interval=RatePerInterval(tasks=2, interval_s=60))
    job = svc(5, budget)
    p = plan(drain("h1"), [(job, [up(f"t{i}", "h1") for i in range(5)])], NOW)
    assert started(p) == ["t0", "t1"]
    assert p.waits["t2"].detail == "rate: 2 disruptions per 60 s already used, next in 60 s"


def test_outside_its_windows_tasks_wait_for_the_window() -> None:
    never_now = TimeWindow(days=("sun",), start_hour=3, end_hour=4)  # NOW is Thursday 1970-01-01
    job = svc(2, DisruptionBudget(unhealthy_tasks=1, windows=(never_now,)))
    p = plan(drain("h1"), [(job, [up("t1", "h1"), up("t2", "h2")])], NOW)
    assert p.waits["t1"].kind == "window"
    assert p.waits["t1"].detail == "outside its disruption windows (next opens sun 03:00 UTC)"
    assert p.next_at == 3 * 86_400 + 3 * 3600


# --- batch


def test_a_batch_task_finishes_until_the_drain_deadline() -> None:
    job = batch(2)
    tasks = [up("b1", "h1", job_id="b1", index=0), up("b2", "h2", job_id="b1", index=1)]
    p = plan(drain("h1", since=NOW - 100, deadline_s=600), [(job, tasks)], NOW)
    assert p.stop == ()
    assert p.waits["b1"].kind == "deadline"
    assert p.waits["b1"].detail == "finishing: drain deadline in 500 s"
    assert p.next_at == NOW + 500


def test_after_the_deadline_batch_tasks_stop_without_limit_by_default() -> None:
    job = batch(3)
    tasks = [up(f"b{i}", "h1", job_id="b1", index=i) for i in range(3)]
    p = plan(drain("h1", since=NOW - 600, deadline_s=600), [(job, tasks)], NOW)
    assert stopped(p) == ["b0", "b1", "b2"]
    assert p.stop[0].detail == "drain deadline passed: rerun elsewhere"
    assert p.start == ()


def test_batch_stops_within_its_budget_counting_those_already_stopping() -> None:
    job = batch(4, DisruptionBudget(unhealthy_tasks=2))
    tasks = [
        task(
            "b0", S.KILL_INITIATED, index=0, job_id="b1", host_id="h1", kill_reason=FinishedReason.RELOCATED
        ),
        up("b1", "h1", job_id="b1", index=1),
        up("b2", "h1", job_id="b1", index=2),
        up("b3", "h2", job_id="b1", index=3),
    ]
    p = plan(drain("h1", since=NOW - 700, deadline_s=600), [(job, tasks)], NOW)
    # 4 live, 3 ready: 2 - 1 unready - 1 in flight = 0.
    assert p.stop == ()
    assert kinds(p) == {"b1": "budget", "b2": "budget"}


def test_batch_relocation_limit() -> None:
    job = batch(2, DisruptionBudget(relocation_limit=1))
    tasks = [up("b0", "h1", job_id="b1", index=0, relocations=1), up("b1", "h1", job_id="b1", index=1)]
    p = plan(drain("h1", since=NOW - 700, deadline_s=600), [(job, tasks)], NOW)
    assert stopped(p) == ["b1"]
    assert kinds(p) == {"b0": "relocation_limit"}


# --- jobs


def test_jobs_not_active_are_skipped() -> None:
    for state in (JobState.KILL_INITIATED, JobState.FINISHED):
        job = svc(1, state=state)
        assert plan(
            drain("h1"), [(job, [up("t1", "h1"), task("t2", S.LAUNCHED, index=None, host_id="h1")])], NOW
        ) == (RelocationPlan())


def test_each_job_has_its_own_budget_and_the_plan_the_earliest_wake() -> None:
    a = svc(2, job_id="a")
    b = batch(1, job_id="b")
    tasks_a = [up("a1", "h1", job_id="a"), up("a2", "h1", job_id="a")]
    tasks_b = [up("b1", "h1", job_id="b", index=0)]
    p = plan(drain("h1", since=NOW - 100, deadline_s=300), [(a, tasks_a), (b, tasks_b)], NOW)
    assert started(p) == ["a1"]
    assert kinds(p) == {"a2": "budget", "b1": "deadline"}
    assert p.next_at == NOW + 200


def test_every_task_on_a_draining_host_is_started_stopped_or_waits() -> None:
    job = svc(6, DisruptionBudget(unhealthy_tasks=2), health=READINESS)
    tasks = [
        up("t1", "h1", ready_since=2.0, relocating_to="r1"),
        up("r1", "h5", ready_since=3.0),
        up("t2", "h1", ready_since=2.0, relocating_to="r2"),
        up("r2", "h6"),
        up("t3", "h1"),
        up("t4", "h1", ready_since=2.0),
        up("t5", "h1", ready_since=2.0),
        up("t6", "h2", ready_since=2.0),
    ]
    p = plan(drain("h1"), [(job, tasks)], NOW)
    on_h1 = {t.id for t in tasks if t.host_id == "h1"}
    decided = set(started(p)) | set(stopped(p)) | set(p.waits)
    assert decided == on_h1
    assert not set(started(p)) & set(stopped(p))
    assert not (set(started(p)) | set(stopped(p))) & set(p.waits)
