"""Small builders for example-based scheduler tests: hosts, jobs, snapshots and plan lookups, each a
sensible value by default with any field overridden by keyword."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from corral.domain.capacity import CapacityGroup
from corral.domain.resources import Resources
from corral.scheduler import (
    Cluster,
    HostSpec,
    JobClass,
    Pending,
    PendingTask,
    Plan,
    Profile,
    Snapshot,
    schedule,
)

NOW = 1000.0


def host(
    host_id: str,
    cpu: float = 16.0,
    memory: int = 65536,
    *,
    zone: str = "z0",
    schedulable: bool = True,
    ports: tuple[int, int] = (30000, 30999),
    interfaces: int = 8,
    addresses: int = 30,
    **attributes: str,
) -> HostSpec:
    return HostSpec(
        host_id,
        Resources(cpu, memory, 100_000, 10_000, 0),
        {"zone": zone, "instance_type": "m5", **attributes},
        ports,
        interfaces,
        addresses,
        schedulable,
    )


def cluster_of(specs: Iterable[HostSpec]) -> Cluster:
    cluster = Cluster()
    for spec in specs:
        cluster.upsert_host(spec)
    return cluster


def job(
    job_id: str,
    cpu: float = 1.0,
    memory: int = 1024,
    *,
    group: str = "default",
    created_at: float = 0.0,
    ports: int = 0,
    sg_code: int | None = None,
    image: str = "",
    size: int = 1,
    hard: Mapping[str, str] | None = None,
    soft: Mapping[str, str] | None = None,
) -> JobClass:
    return JobClass(
        job_id,
        group,
        Resources(cpu, memory),
        created_at,
        ports,
        sg_code,
        image,
        size,
        dict(hard or {}),
        dict(soft or {}),
    )


def tasks_of(j: JobClass, count: int | None = None, ready_at: float = 0.0) -> list[PendingTask]:
    return [
        PendingTask(f"{j.job_id}-{i}", j.job_id, ready_at, (j.created_at, i))
        for i in range(j.size if count is None else count)
    ]


def snapshot(
    cluster: Cluster,
    jobs: Iterable[JobClass],
    *,
    tasks: list[PendingTask] | None = None,
    groups: Iterable[CapacityGroup] = (),
    usage: Mapping[str, Resources] | None = None,
) -> Snapshot:
    jobs = list(jobs)
    return Snapshot(
        NOW,
        cluster,
        {j.job_id: j for j in jobs},
        [t for j in jobs for t in tasks_of(j)] if tasks is None else tasks,
        {g.name: g for g in groups},
        dict(usage or {}),
    )


def run(snap: Snapshot, profile: Profile | None = None, seed: int = 0) -> Plan:
    return schedule(snap, profile or Profile(), np.random.default_rng(seed))


def placed(plan: Plan) -> dict[str, str]:
    """task id -> host id"""
    return {a.task_id: a.host_id for a in plan.assignments}


def pending(plan: Plan) -> dict[str, Pending]:
    return {p.task_id: p for p in plan.pending}


def per_host(plan: Plan) -> Counter[str]:
    return Counter(a.host_id for a in plan.assignments)


def cluster_state(cluster: Cluster) -> dict[str, Any]:
    """A deep copy of everything the cluster holds, to compare before and after."""
    arrays = {name: value.copy() for name, value in vars(cluster).items() if isinstance(value, np.ndarray)}
    others = {
        "sg_room": {k: v.copy() for k, v in cluster.sg_room.items()},
        "attrs": {k: v.copy() for k, v in cluster.attrs.items()},
        "used_ports": dict(cluster.used_ports),
        "job_hosts": copy.deepcopy(cluster.job_hosts),
        "image_hosts": {k: {int(h) for h in np.flatnonzero(v)} for k, v in cluster.image_hosts.items()},
        "codebook": copy.deepcopy(cluster.codebook),
        "sg_codes": dict(cluster.sg_codes),
        "ids": list(cluster.ids),
        "index": dict(cluster.index),
    }
    return {**arrays, **others}


def assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Two ``cluster_state``s are equal, naming the first part that differs."""
    assert before.keys() == after.keys()
    for name, value in before.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, after[name]), name
        elif name in ("sg_room", "attrs"):
            assert value.keys() == after[name].keys(), name
            assert all(np.array_equal(v, after[name][k]) for k, v in value.items()), name
        else:
            assert value == after[name], name
