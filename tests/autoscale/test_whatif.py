"""The dry run of a job: where its tasks would go now and, for the ones that would wait, what would make
them fit — the capacity group's limit, new hosts of a host group, other jobs' running tasks finishing, or
else the scheduler's own reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from corral.autoscale.whatif import PlanResult, Running, Suggestion, SuggestionKind, plan_job
from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.hostgroup import HostGroup, HostShape
from corral.domain.resources import Resources
from corral.scheduler import Cluster, JobClass, Mode, PendingReason, Profile, Snapshot
from tests.scheduler.builders import (
    NOW,
    assert_same,
    cluster_of,
    cluster_state,
    host,
    job,
    snapshot,
    tasks_of,
)

K = SuggestionKind
PACK = Profile().with_mode(Tier.FLEX, Mode.PACK)
SPREAD = Profile().with_mode(Tier.FLEX, Mode.SPREAD)


def empty(
    cluster: Cluster, groups: Iterable[CapacityGroup] = (), usage: Mapping[str, Resources] | None = None
) -> Snapshot:
    """The cluster with nothing waiting (the planned job is added by ``plan_job``)."""
    return snapshot(cluster, [], groups=groups, usage=usage)


def kinds(result: PlanResult) -> list[SuggestionKind]:
    return [s.kind for s in result.suggestions]


def only(result: PlanResult, kind: SuggestionKind) -> Suggestion:
    (found,) = [s for s in result.suggestions if s.kind is kind]
    return found


def group(name: str, cpu: float = 8.0, memory: int = 32768, **kwargs: Any) -> HostGroup:
    shape = HostShape(Resources(cpu, memory, 100_000, 10_000, 0), zones=("z0", "z1"), instance_type="m5")
    return HostGroup(name, shape, **kwargs)


def running(cluster: Cluster, j: JobClass, hosts: Iterable[str]) -> list[Running]:
    """Tasks of ``j`` placed on ``hosts`` (one per entry), charged to the cluster."""
    out = []
    for i, host_id in enumerate(hosts):
        footprint = j.footprint()
        cluster.assign(cluster.index[host_id], footprint)
        out.append(Running(f"{j.job_id}-r{i}", j.job_id, host_id, footprint))
    return out


# -- where the tasks go -----------------------------------------------------------------------------


def test_a_job_that_fits_says_where_and_suggests_nothing() -> None:
    cluster = cluster_of([host(f"h{i}", cpu=8.0) for i in range(3)])
    result = plan_job(empty(cluster), job("new", cpu=2.0), 6, PACK)
    assert (result.tasks, result.placed, result.unplaced) == (6, 6, 0)
    assert sum(h.tasks for h in result.hosts) == 6
    assert [h.tasks for h in result.hosts] == [4, 2]  # pack: fill one host first
    assert result.zones == {"z0": 6}
    assert result.suggestions == () and result.reasons == ()


def test_a_large_job_lists_the_busiest_hosts_and_sums_up_the_rest() -> None:
    cluster = cluster_of([host(f"h{i:02d}", cpu=4.0, zone=f"z{i % 3}") for i in range(30)])
    result = plan_job(empty(cluster), job("new", cpu=1.0), 60, SPREAD)
    assert result.placed == 60
    assert len(result.hosts) == 20 and result.other_hosts == 10
    assert sum(h.tasks for h in result.hosts) + result.other_tasks == 60
    assert sum(result.zones.values()) == 60 and set(result.zones) == {"z0", "z1", "z2"}


def test_a_plan_changes_nothing() -> None:
    cluster = cluster_of([host("h0", cpu=4.0)])
    j = job("y", cpu=2.0)
    ran = running(cluster, j, ["h0", "h0"])
    before = cluster_state(cluster)
    plan_job(empty(cluster), job("new", cpu=2.0), 3, PACK, host_groups=[group("g")], running=ran)
    assert_same(before, cluster_state(cluster))


def test_the_queue_already_waiting_goes_first() -> None:
    cluster = cluster_of([host("h0", cpu=4.0)])
    older = job("older", cpu=1.0, size=3, created_at=1.0)
    result = plan_job(snapshot(cluster, [older]), job("new", cpu=1.0, created_at=NOW), 2, PACK)
    assert (result.placed, result.unplaced, result.queued) == (1, 1, 3)


# -- the capacity group's limit --------------------------------------------------------------------


def test_a_group_at_its_limit_says_exactly_how_much_more_it_needs() -> None:
    cluster = cluster_of([host(f"h{i}", cpu=8.0) for i in range(2)])
    batch = CapacityGroup("batch", Tier.FLEX, limit=Resources(cpu=4.0))
    snap = empty(cluster, groups=[batch], usage={"batch": Resources(cpu=2.0, memory_mb=2048)})
    result = plan_job(snap, job("new", cpu=1.0, group="batch"), 4, PACK)
    assert (result.placed, result.unplaced) == (2, 2)
    assert result.reasons[0].reason is PendingReason.GROUP_LIMIT
    limit = only(result, K.GROUP_LIMIT)
    assert limit.complete and (limit.tasks, limit.tried) == (2, 2)
    assert (limit.group, limit.rise, limit.limit) == ("batch", {"cpu": 2.0}, {"cpu": 6.0})
    assert "cpu by 2 (to 6)" in limit.message
    assert kinds(result) == [K.GROUP_LIMIT]  # nothing else needed


def test_the_rise_counts_the_groups_queue_before_the_job() -> None:
    cluster = cluster_of([host(f"h{i}", cpu=8.0) for i in range(2)])
    batch = CapacityGroup("batch", Tier.FLEX, limit=Resources(cpu=4.0, memory_mb=100_000))
    older = job("older", cpu=1.0, group="batch", size=3, created_at=1.0)
    snap = snapshot(cluster, [older], groups=[batch], tasks=tasks_of(older))
    result = plan_job(snap, job("new", cpu=1.0, group="batch", created_at=NOW), 3, PACK)
    assert (result.placed, result.unplaced) == (1, 2)
    limit = only(result, K.GROUP_LIMIT)
    assert limit.rise == {"cpu": 2.0}  # memory is limited too, but far from its limit


def test_a_limit_rise_that_is_not_enough_says_so_and_the_rest_is_tried_on_the_cluster() -> None:
    cluster = cluster_of([host("h0", cpu=4.0)])
    batch = CapacityGroup("batch", Tier.FLEX, limit=Resources(cpu=2.0))
    result = plan_job(empty(cluster, groups=[batch]), job("new", cpu=1.0, group="batch"), 6, PACK)
    assert (result.placed, result.unplaced) == (2, 4)
    limit = only(result, K.GROUP_LIMIT)
    assert not limit.complete and (limit.tasks, limit.tried) == (2, 4)
    assert limit.rise == {"cpu": 4.0}  # room for all six: the four the cluster has room for, and two more
    hosts = only(result, K.NO_HOST_GROUP)
    assert hosts.with_limit and hosts.tried == 2
    reason = only(result, K.SCHEDULER_REASON)
    assert reason.reason == PendingReason.NO_CAPACITY and reason.tried == 2


# -- new hosts ---------------------------------------------------------------------------------------


def test_more_hosts_of_a_host_group_make_it_fit() -> None:
    cluster = cluster_of([host("h0", cpu=4.0)])
    result = plan_job(empty(cluster), job("new", cpu=2.0), 10, PACK, host_groups=[group("g", cpu=8.0)])
    assert (result.placed, result.unplaced) == (2, 8)
    more = only(result, K.MORE_HOSTS)
    assert more.complete and more.hosts == {"g": 2} and (more.tasks, more.tried) == (8, 8)
    assert more.message.startswith("fits with 2 more hosts of host group g")
    assert "not autoscaled" in more.message  # the group has no provider
    assert K.SCHEDULER_REASON not in kinds(result)


def test_the_cheapest_group_is_suggested_first_and_alternatives_follow() -> None:
    cluster = cluster_of([host("h0", cpu=1.0)])
    groups = [group("small", cpu=4.0, cost_per_host=1.0), group("big", cpu=16.0, cost_per_host=10.0)]
    result = plan_job(empty(cluster), job("new", cpu=4.0), 4, PACK, host_groups=groups)
    first, *rest = [s for s in result.suggestions if s.kind is K.MORE_HOSTS]
    assert first.hosts == {"small": 4} and first.cost == 4.0
    assert {"big": 1} in [s.hosts for s in rest]


def test_a_group_at_its_max_size_cannot_help() -> None:
    cluster = cluster_of([host("h0", cpu=2.0, host_group="g")])
    result = plan_job(
        empty(cluster), job("new", cpu=2.0), 3, PACK, host_groups=[group("g", cpu=2.0, max_size=2)]
    )
    more = only(result, K.MORE_HOSTS)
    assert more.hosts == {"g": 1} and not more.complete and (more.tasks, more.tried) == (1, 2)
    shape = only(result, K.NO_SHAPE)
    assert shape.tried == 1 and "max size" in shape.message
    assert K.SCHEDULER_REASON in kinds(result)


def test_when_no_group_has_a_shape_for_the_task_it_says_so_and_gives_the_schedulers_reason() -> None:
    cluster = cluster_of([host("h0", cpu=8.0)])
    result = plan_job(empty(cluster), job("new", cpu=32.0), 2, PACK, host_groups=[group("g", cpu=8.0)])
    assert result.placed == 0
    shape = only(result, K.NO_SHAPE)
    assert "shape" in shape.message and shape.tried == 2
    reason = only(result, K.SCHEDULER_REASON)
    assert reason.reason == PendingReason.NO_CAPACITY and reason.message.startswith("nothing tried makes 2")


def test_without_a_host_group_it_says_new_hosts_cannot_be_tried() -> None:
    result = plan_job(empty(cluster_of([host("h0", cpu=1.0)])), job("new", cpu=2.0), 1, PACK)
    hosts = only(result, K.NO_HOST_GROUP)
    assert "no host group is configured" in hosts.message
    assert kinds(result) == [K.NO_HOST_GROUP, K.SCHEDULER_REASON]


def test_a_constraint_that_only_a_new_host_of_a_group_satisfies() -> None:
    cluster = cluster_of([host("h0", cpu=8.0, host_group="default")])
    new = job("new", cpu=1.0, hard={"host_group": "gpu"})
    result = plan_job(empty(cluster), new, 2, PACK, host_groups=[group("gpu"), group("other")])
    assert only(result, K.MORE_HOSTS).hosts == {"gpu": 1}


# -- running tasks finishing -----------------------------------------------------------------------


def test_the_fewest_running_tasks_of_one_job_whose_finish_makes_room() -> None:
    cluster = cluster_of([host("h0", cpu=4.0), host("h1", cpu=4.0)])
    ran = running(cluster, job("y", cpu=2.0), ["h0", "h0"])
    ran += running(cluster, job("w", cpu=1.0), ["h1"] * 4)
    result = plan_job(empty(cluster), job("new", cpu=2.0), 1, PACK, running=ran)
    after = only(result, K.AFTER_TASKS_FINISH)
    assert after.complete and after.jobs == {"y": 1}
    assert after.on_hosts == ("h0",) and len(after.task_ids) == 1
    assert "after 1 running task of job y finish" in after.message


def test_the_smallest_count_is_found_within_a_big_job() -> None:
    cluster = cluster_of([host(f"h{i}", cpu=4.0) for i in range(4)])
    ran = running(cluster, job("y", cpu=1.0), [f"h{i}" for i in range(4) for _ in range(4)])
    result = plan_job(empty(cluster), job("new", cpu=2.0, hard={"unique_host": "true"}), 3, PACK, running=ran)
    after = only(result, K.AFTER_TASKS_FINISH)
    assert after.jobs == {"y": 6}  # two on each of three hosts
    assert len(set(after.on_hosts)) == 3


def test_when_no_one_job_is_enough_the_fewest_jobs_together() -> None:
    cluster = cluster_of([host("h0", cpu=4.0), host("h1", cpu=4.0)])
    ran = running(cluster, job("y", cpu=4.0), ["h0"]) + running(cluster, job("w", cpu=4.0), ["h1"])
    result = plan_job(empty(cluster), job("new", cpu=4.0), 2, PACK, running=ran)
    after = only(result, K.AFTER_TASKS_FINISH)
    assert after.jobs == {"w": 1, "y": 1}
    assert "jobs" in after.message


def test_tasks_on_hosts_the_jobs_constraints_rule_out_are_not_waited_for() -> None:
    cluster = cluster_of([host("h0", cpu=4.0, zone="z0"), host("h1", cpu=1.0, zone="z1")])
    ran = running(cluster, job("y", cpu=4.0), ["h0"])
    new = job("new", cpu=2.0, hard={"availability_zone": "z1"})
    result = plan_job(empty(cluster), new, 1, PACK, running=ran)
    assert K.AFTER_TASKS_FINISH not in kinds(result)
    assert only(result, K.SCHEDULER_REASON).reason == PendingReason.NO_CAPACITY


def test_a_constraint_nothing_satisfies_gets_the_schedulers_reason() -> None:
    cluster = cluster_of([host("h0"), host("h1")])
    new = job("new", hard={"availability_zone": "z9"})
    result = plan_job(empty(cluster), new, 2, PACK, host_groups=[group("g")])
    assert K.AFTER_TASKS_FINISH not in kinds(result)
    assert only(result, K.NO_SHAPE).tried == 2
    reason = only(result, K.SCHEDULER_REASON)
    assert reason.reason == PendingReason.CONSTRAINT and "availability_zone" in reason.message
    assert reason.rejections == {"constraint:availability_zone": 2}


def test_a_service_whose_tasks_would_have_to_go_is_said_to_shrink() -> None:
    cluster = cluster_of([host("h0", cpu=4.0)])
    ran = running(cluster, job("svc", cpu=2.0), ["h0", "h0"])
    result = plan_job(empty(cluster), job("new", cpu=2.0), 1, PACK, running=ran, services={"svc"})
    after = only(result, K.AFTER_TASKS_FINISH)
    assert after.jobs == {"svc": 1}
    assert after.message.startswith("fits once service job svc shrinks by 1 running task (on h0)")
