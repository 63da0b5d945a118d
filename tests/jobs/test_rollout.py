"""Rolling updates, canaries and automatic reverts (corral.jobs.update, corral.jobs.versions), driven by a
small fake shell: tasks start at once and become ready as the test says; time is a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from corral.domain.errors import ConflictError, ValidationError
from corral.domain.health import HealthChecks, HealthStatus, HttpProbe, Probe, ProbeResult
from corral.domain.job import Job
from corral.domain.policies import resolve
from corral.domain.readiness import is_ready
from corral.domain.rollout import RollingUpdate, RolloutPhase, UpdateStrategy, VersionOutcome
from corral.domain.states import FinishedReason, TaskState
from corral.domain.stimuli import Ended, KillRequested, Placed, ProbesReported, Reported
from corral.domain.task import Task
from corral.jobs import JobManagerConfig, reconcile, versions
from corral.jobs.actions import ChangeJob, CreateTask, FinishTask, KillTask
from corral.jobs.task_machine import transition
from tests.domain.factories import container, resources, service_job

READY = ProbeResult(ready=HealthStatus.HEALTHY, detail="200")
FAILING = ProbeResult(ready=HealthStatus.UNHEALTHY, detail="answered 500")
CHECKS = HealthChecks(readiness=Probe(http=HttpProbe(0, "/"), interval_s=1, timeout_s=1))


def v(image_tag: str) -> object:
    return container(
        image=replace(container().image, tag=image_tag), resources=resources(ports=1), health=CHECKS
    )


@dataclass
class Shell:
    job: Job
    now: float = 100.0
    tasks: dict[str, Task] = field(default_factory=dict)
    made: int = 0
    killed_ready: list[str] = field(default_factory=list)
    config: JobManagerConfig = field(default_factory=JobManagerConfig)

    def step(self) -> None:
        for _ in range(20):
            result = reconcile(self.job, list(self.tasks.values()), self.now, self.config)
            if not result.actions:
                return
            for action in result.actions:
                self.apply(action)
        raise AssertionError("no fixpoint")

    def apply(self, action: object) -> None:
        match action:
            case CreateTask():
                self.made += 1
                version = action.version if action.version is not None else self.job.version
                t = Task(f"t{self.made}", self.job.id, None, created_at=self.now, version=version)
                t = transition(t, Placed("h1", self.now)) or t
                t = transition(t, Reported(TaskState.STARTED, self.now)) or t
                self.tasks[t.id] = t
            case KillTask():
                t = self.tasks[action.task_id]
                if is_ready(t, self.job.container_of(t.version).health):
                    self.killed_ready.append(t.id)
                t = transition(t, KillRequested(action.reason, self.now, action.detail)) or t
                self.tasks[t.id] = transition(t, Reported(TaskState.FINISHED, self.now, exit_code=0)) or t
            case FinishTask():
                t = self.tasks[action.task_id]
                self.tasks[t.id] = transition(t, Ended(action.reason, self.now, action.detail)) or t
            case ChangeJob():
                self.job = action.job

    def probe(self, result: ProbeResult, version: int | None = None) -> None:
        for t in list(self.tasks.values()):
            if t.is_live and t.kill_reason is None and (version is None or t.version == version):
                self.tasks[t.id] = transition(t, ProbesReported(result, self.now)) or t

    def live(self, version: int | None = None) -> list[Task]:
        return [
            t
            for t in self.tasks.values()
            if t.is_live and t.kill_reason is None and (version is None or t.version == version)
        ]

    def ready(self) -> int:
        return sum(1 for t in self.live() if is_ready(t, self.job.container_of(t.version).health))


def running_service(desired: int = 4, **rolling: object) -> Shell:
    job = service_job(desired=desired)
    strategy = UpdateStrategy(RollingUpdate(**rolling)) if rolling else None  # type: ignore[arg-type]
    job = replace(job, descriptor=replace(job.descriptor, container=v("v1"), update_strategy=strategy))
    shell = Shell(job)
    shell.step()
    shell.probe(READY)
    return shell


def update_to(shell: Shell, tag: str) -> None:
    new = replace(shell.job.descriptor, container=v(tag))
    shell.job, started = versions.update(shell.job, new, shell.now, "alice")
    assert started


def drive(shell: Shell, floor: int, *, probe: ProbeResult = READY, rounds: int = 60) -> None:
    """Advance the clock a second at a time, the tasks of the version being rolled out answering ``probe``
    (the others stay as they are); the ready count never drops below ``floor``."""
    version = shell.job.version
    for _ in range(rounds):
        shell.step()
        assert shell.ready() >= floor, f"{shell.ready()} ready at {shell.now}"
        shell.now += 1.0
        shell.probe(probe, version)
        shell.step()
        assert shell.ready() >= floor
        if shell.job.rollout is not None and not shell.job.rollout.phase.active:
            return


@pytest.mark.parametrize(("surge", "unavailable"), [(1, 1), (0, 1), (1, 0), (2, 0), ("50%", "25%"), (4, 2)])
def test_a_rolling_update_never_drops_below_desired_minus_max_unavailable(
    surge: int | str, unavailable: int | str
) -> None:
    shell = running_service(4, max_surge=surge, max_unavailable=unavailable, min_healthy_s=2.0)
    update_to(shell, "v2")
    floor = 4 - resolve(unavailable, 4, round_up=False)
    drive(shell, floor)
    assert shell.job.rollout is not None and shell.job.rollout.phase is RolloutPhase.SUCCEEDED
    assert [t.version for t in shell.live()] == [2, 2, 2, 2]
    assert {v.number: v.outcome for v in shell.job.versions} == {
        1: VersionOutcome.HEALTHY,
        2: VersionOutcome.HEALTHY,
    }


def test_a_new_task_counts_only_once_healthy_for_min_healthy_s() -> None:
    shell = running_service(2, max_surge=1, max_unavailable=0, min_healthy_s=10.0)
    update_to(shell, "v2")
    shell.step()
    shell.probe(READY, 2)
    shell.now += 5.0
    shell.step()
    assert len(shell.live(1)) == 2  # ready, but not for 10 s: no old task goes yet
    shell.now += 5.0
    shell.step()
    assert len(shell.live(1)) == 1


def test_a_version_that_fails_its_readiness_probe_is_reverted() -> None:
    shell = running_service(4, max_surge=1, max_unavailable=1, min_healthy_s=1.0)
    update_to(shell, "bad")
    drive(shell, 3, probe=FAILING, rounds=5)
    job = shell.job
    assert job.version == 1 and job.rollout is not None and job.rollout.revert_of == 2
    assert "unhealthy" in job.rollout.detail
    drive(shell, 3)
    assert shell.job.rollout is not None and shell.job.rollout.phase is RolloutPhase.SUCCEEDED
    assert [t.version for t in shell.live()] == [1, 1, 1, 1]
    assert {v.number: v.outcome for v in shell.job.versions}[2] is VersionOutcome.FAILED


def test_a_version_whose_tasks_never_become_ready_misses_its_progress_deadline() -> None:
    shell = running_service(2, max_surge=1, max_unavailable=0, min_healthy_s=1.0, progress_deadline_s=30.0)
    update_to(shell, "slow")
    for _ in range(29):
        shell.now += 1.0
        shell.step()
    assert shell.job.version == 2
    shell.now += 2.0
    shell.step()
    assert shell.job.version == 1
    assert any("no progress for 31s" in e.message for e in shell.job.history)


def test_a_failed_version_without_auto_revert_stops_for_an_operator() -> None:
    shell = running_service(2, max_surge=1, max_unavailable=0, auto_revert=False)
    update_to(shell, "bad")
    shell.step()
    shell.probe(FAILING, 2)
    shell.step()
    assert shell.job.rollout is not None and shell.job.rollout.phase is RolloutPhase.FAILED
    assert shell.job.version == 2 and len(shell.live(1)) == 2  # nothing more replaced
    shell.job = versions.rollback(shell.job, None, shell.now, "bob")
    assert shell.job.version == 3 and shell.job.container_of(3) == shell.job.container_of(1)


def test_canaries_wait_for_a_promotion_then_the_rest_rolls() -> None:
    shell = running_service(4, canaries=1, max_surge=1, max_unavailable=1, min_healthy_s=1.0)
    update_to(shell, "v2")
    assert shell.job.rollout is not None and shell.job.rollout.phase is RolloutPhase.CANARY
    for _ in range(10):
        shell.step()
        shell.probe(READY, 2)
        shell.now += 1.0
    assert len(shell.live(2)) == 1 and len(shell.live(1)) == 4
    # An old task that fails meanwhile is replaced by the old version.
    old = shell.live(1)[0]
    shell.tasks[old.id] = transition(old, Reported(TaskState.FINISHED, shell.now, exit_code=1)) or old
    shell.step()
    assert len(shell.live(1)) == 4
    shell.job = versions.promote(shell.job, shell.now, "alice")
    drive(shell, 3)
    assert [t.version for t in shell.live()] == [2, 2, 2, 2]


def test_canaries_promote_themselves_when_asked_to() -> None:
    shell = running_service(2, canaries=1, auto_promote=True, min_healthy_s=3.0)
    update_to(shell, "v2")
    drive(shell, 1)
    assert shell.job.rollout is not None and shell.job.rollout.phase is RolloutPhase.SUCCEEDED
    assert shell.job.rollout.promoted


def test_a_rollout_resumes_from_the_tasks_as_they_are() -> None:
    """Reconciling is level-triggered: a new leader that loads the job mid-rollout creates nothing twice."""
    shell = running_service(4, max_surge=1, max_unavailable=0, min_healthy_s=1.0)
    update_to(shell, "v2")
    shell.step()
    before = len(shell.tasks)
    again = reconcile(shell.job, list(shell.tasks.values()), shell.now, shell.config)
    assert not any(isinstance(a, CreateTask) for a in again.actions)
    assert len(shell.tasks) == before


def test_liveness_failure_kills_and_replaces_the_task() -> None:
    shell = running_service(2)
    victim = shell.live()[0]
    dead = ProbeResult(live=HealthStatus.UNHEALTHY, ready=HealthStatus.HEALTHY, detail="tcp refused")
    shell.tasks[victim.id] = transition(victim, ProbesReported(dead, shell.now)) or victim
    shell.step()
    ended = shell.tasks[victim.id]
    assert (
        ended.reason is FinishedReason.UNHEALTHY
        and "liveness probe failed: tcp refused" in ended.reason_detail
    )
    assert len(shell.live()) == 2


def test_updates_refuse_what_cannot_change() -> None:
    shell = running_service(2)
    with pytest.raises(ValidationError) as e:
        versions.update(shell.job, replace(shell.job.descriptor, application="other"), shell.now)
    assert e.value.code == "immutable_field"
    same, started = versions.update(shell.job, shell.job.descriptor, shell.now)
    assert same is shell.job and not started
    with pytest.raises(ConflictError):
        versions.promote(shell.job, shell.now)
    with pytest.raises(ConflictError):
        versions.rollback(shell.job, 7, shell.now)


def test_an_update_keeps_the_jobs_capacity() -> None:
    shell = running_service(3)
    spec = shell.job.descriptor
    assert spec.service is not None
    smaller = replace(
        spec,
        container=v("v2"),
        service=replace(spec.service, capacity=replace(spec.service.capacity, desired=1)),
    )
    job, _ = versions.update(shell.job, smaller, shell.now)
    assert job.descriptor.service is not None and job.descriptor.service.capacity.desired == 3
