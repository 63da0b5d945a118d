"""Properties of the drain planner over many rounds of "plan, apply, let replacements come up in any order
(or fail)": a service keeping availability p never has fewer than ceil(desired * p / 100) tasks ready, no
ready service task is stopped before its replacement is ready, and the budget counts every move in flight;
and when the budget leaves room and replacements come up, every draining host empties."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.disruption.relocation import DrainingHost, RelocationPlan, plan
from corral.domain.disruption import DisruptionBudget
from corral.domain.job import Job
from corral.domain.readiness import is_ready
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task
from tests.domain.factories import service_job

S = TaskState
HOSTS = tuple(f"h{i}" for i in range(6))
SPARE = "spare"  # where replacements land: never draining


def ready_ids(tasks: dict[str, Task]) -> set[str]:
    return {t.id for t in tasks.values() if is_ready(t, None)}


def in_flight(tasks: dict[str, Task]) -> int:
    return sum(
        1 for t in tasks.values() if t.is_live and t.kill_reason is None and t.relocating_to is not None
    )


def apply(p: RelocationPlan, tasks: dict[str, Task], job: Job, now: float, serial: list[int]) -> Job:
    """What the shell does with a plan: clear abandoned moves, stop, and start replacements."""
    for task_id in p.abandon:
        tasks[task_id] = replace(tasks[task_id], relocating_to=None)
    for stop in p.stop:
        old = tasks[stop.task_id]
        tasks[old.id] = replace(old, state=S.KILL_INITIATED, kill_reason=FinishedReason.RELOCATED)
    for start in p.start:
        serial[0] += 1
        new_id = f"r{serial[0]}"
        old = tasks[start.task_id]
        tasks[new_id] = Task(new_id, job.id, None, relocations=old.relocations + 1, created_at=now)
        tasks[old.id] = replace(old, relocating_to=new_id)
    return replace(job, disruptions=(*job.disruptions, *(now,) * len(p.start)))


def progress(tasks: dict[str, Task], moves: list[int], now: float) -> None:
    """Kills finish; each pending replacement, by the drawn move: stays (0), comes up ready (1), fails (2)."""
    for t in list(tasks.values()):
        if t.state is S.KILL_INITIATED:
            tasks[t.id] = replace(t, state=S.FINISHED, reason=t.kill_reason, finished_at=now)
    pending = sorted(t.id for t in tasks.values() if t.is_live and not is_ready(t, None))
    for task_id, move in zip(pending, moves, strict=False):
        t = tasks[task_id]
        if move == 1:
            tasks[task_id] = replace(t, state=S.STARTED, host_id=SPARE, started_at=now)
        elif move == 2:
            tasks[task_id] = replace(t, state=S.FINISHED, reason=FinishedReason.FAILED, finished_at=now)


@settings(max_examples=300, deadline=None)
@given(
    desired=st.integers(1, 12),
    p=st.sampled_from([0.0, 25.0, 33.3, 50.0, 75.0, 90.0, 100.0]),
    draining=st.sets(st.sampled_from(HOSTS), min_size=1),
    data=st.data(),
)
def test_availability_holds_and_no_ready_task_stops_before_its_replacement_is_ready(
    desired: int, p: float, draining: set[str], data: st.DataObject
) -> None:
    job = service_job(desired=desired, max=desired * 3)
    job = replace(
        job, descriptor=replace(job.descriptor, disruption_budget=DisruptionBudget(availability_percentage=p))
    )
    placed = data.draw(st.lists(st.sampled_from(HOSTS), min_size=desired, max_size=desired))
    tasks = {
        f"t{i}": Task(f"t{i}", job.id, None, state=S.STARTED, host_id=h, started_at=0.0)
        for i, h in enumerate(placed)
    }
    required = math.ceil(desired * p / 100 - 1e-9)
    hosts = {h: DrainingHost(h, 0.0, 600.0) for h in draining}
    serial = [0]
    now = 1.0
    for _ in range(data.draw(st.integers(1, 3 * desired + 4))):
        ready = ready_ids(tasks)
        assert len(ready) >= required
        result = plan(hosts, [(job, list(tasks.values()))], now)
        for stop in result.stop:
            old = tasks[stop.task_id]
            if old.id in ready:  # make before break
                assert old.relocating_to is not None and old.relocating_to in ready, stop
        job = apply(result, tasks, job, now, serial)
        assert len(ready_ids(tasks)) >= required
        if result.start:
            # Every move in flight may still take its task away: the rest keep availability.
            assert len(ready_ids(tasks)) - in_flight(tasks) >= required
            note("relocations started")
        moves = data.draw(st.lists(st.sampled_from([0, 1, 1, 2]), max_size=2 * desired))
        progress(tasks, moves, now)
        assert len(ready_ids(tasks)) >= required
        now += 10.0


@settings(max_examples=150, deadline=None)
@given(
    desired=st.integers(1, 10),
    budget=st.sampled_from(
        [
            None,
            DisruptionBudget(availability_percentage=50.0),
            DisruptionBudget(availability_percentage=90.0),
            DisruptionBudget(unhealthy_tasks=1),
            DisruptionBudget(unhealthy_tasks=3),
            DisruptionBudget(relocation_limit=1),
        ]
    ),
    placed=st.lists(st.sampled_from(HOSTS), min_size=10, max_size=10),
    draining=st.sets(st.sampled_from(HOSTS), min_size=1),
)
def test_draining_hosts_empty_when_the_budget_leaves_room(
    desired: int, budget: DisruptionBudget | None, placed: list[str], draining: set[str]
) -> None:
    job = service_job(desired=desired, max=desired * 3)
    job = replace(job, descriptor=replace(job.descriptor, disruption_budget=budget))
    p = budget.availability_percentage if budget and budget.availability_percentage is not None else 0.0
    if math.ceil(desired * p / 100 - 1e-9) >= desired:
        return  # nothing may ever move: by design
    tasks = {
        f"t{i}": Task(f"t{i}", job.id, None, state=S.STARTED, host_id=h, started_at=0.0)
        for i, h in enumerate(placed[:desired])
    }
    hosts = {h: DrainingHost(h, 0.0, 600.0) for h in draining}
    serial = [0]
    now = 1.0
    for _ in range(2 * desired + 2):
        result = plan(hosts, [(job, list(tasks.values()))], now)
        job = apply(result, tasks, job, now, serial)
        progress(tasks, [1] * len(tasks), now)  # every replacement comes up at once
        now += 10.0
    assert not [t.id for t in tasks.values() if t.is_live and t.host_id in draining]
    assert len(ready_ids(tasks)) == desired
