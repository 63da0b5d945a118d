"""Consolidation: which hosts could be emptied, every task on them re-placed elsewhere by the real
scheduler — never onto an emptied or unschedulable host, never past a hard constraint — and why the
other candidates stay."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from corral.domain.capacity import Tier
from corral.scheduler import Cluster, JobClass, Mode, PendingTask, Profile, Snapshot, schedule
from corral.scheduler.consolidate import Consolidation, Resident, consolidate
from tests.scheduler.builders import assert_same, cluster_of, cluster_state, host, job

PROFILE = Profile()
SPREAD = Profile().with_mode(Tier.FLEX, Mode.SPREAD)


class Fleet:
    """A cluster with tasks placed on it, and the residents consolidation is told about."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.jobs: dict[str, JobClass] = {}
        self.residents: dict[str, list[Resident]] = defaultdict(list)

    def put(self, host_id: str, j: JobClass, count: int = 1) -> None:
        """Place ``count`` tasks of ``j`` on ``host_id`` (as the master holds them)."""
        self.jobs[j.job_id] = j
        h = self.cluster.index[host_id]
        for _ in range(count):
            task_id = f"{j.job_id}-{len(self.residents[host_id])}@{host_id}"
            footprint = j.footprint(self.cluster.pick_ports(h, j.ports))
            self.cluster.assign(h, footprint)
            self.residents[host_id].append(Resident(task_id, j.job_id, footprint))

    def used(self) -> int:
        return int(np.count_nonzero(self.cluster.task_count[: self.cluster.size]))

    def consolidate(self, candidates: list[str], limit: int, seed: int = 0) -> Consolidation:
        return consolidate(
            self.cluster, self.jobs, self.residents, candidates, PROFILE, limit=limit, seed=seed
        )


def sixteen_cpu(*names: str, **attributes: str) -> Fleet:
    return Fleet(cluster_of(host(n, cpu=16.0, memory=65536, **attributes) for n in names))


def online(sizes: list[int], hosts: int, cpu: float) -> Fleet:
    """Tasks of these cpu sizes (one job per size) arriving one per iteration, placed in pack mode."""
    fleet = Fleet(cluster_of(host(f"h{i:02d}", cpu=cpu) for i in range(hosts)))
    cluster = fleet.cluster
    for i, size in enumerate(sizes):
        j = fleet.jobs.setdefault(f"s{size}", job(f"s{size}", cpu=float(size), memory=64))
        task = PendingTask(f"t{i:02d}", j.job_id)
        plan = schedule(Snapshot(0.0, cluster, {j.job_id: j}, [task]), PROFILE, np.random.default_rng(i))
        for a in plan.assignments:
            assert a.footprint is not None
            cluster.assign(cluster.index[a.host_id], a.footprint)
            fleet.residents[a.host_id].append(Resident(a.task_id, j.job_id, a.footprint))
    return fleet


def settle(fleet: Fleet, limit: int, reuse: bool, rounds: int = 20) -> None:
    """Consolidation rounds, each one's moves made (emptied hosts left idle), until one empties none."""
    cluster, count = fleet.cluster, sum(len(rs) for rs in fleet.residents.values())
    for r in range(rounds):
        busy = sorted(h for h, rs in fleet.residents.items() if rs)
        result = consolidate(
            cluster, fleet.jobs, fleet.residents, busy, PROFILE, limit=limit, seed=r, reuse=reuse
        )
        if not result.emptied:
            return
        moved: dict[str, Resident] = {}
        for host_id in result.emptied:
            for resident in fleet.residents.pop(host_id):
                cluster.release(cluster.index[host_id], resident.footprint)
                moved[resident.task_id] = resident
        assert set(result.moves) == set(moved)
        for task_id, host_id in result.moves.items():
            footprint = fleet.jobs[moved[task_id].job_id].footprint()
            cluster.assign(cluster.index[host_id], footprint)
            fleet.residents[host_id].append(Resident(task_id, moved[task_id].job_id, footprint))
        assert (cluster.free[:, : cluster.size] >= -1e-9).all()
    assert sum(len(rs) for rs in fleet.residents.values()) == count


def test_an_idle_host_is_removable_as_it_is() -> None:
    fleet = sixteen_cpu("h0", "h1")
    fleet.put("h1", job("busy", cpu=4.0))
    result = fleet.consolidate(["h0"], limit=1)
    assert result.emptied == ("h0",)
    assert result.moves == {}
    assert result.kept == {}


def test_a_host_whose_tasks_fit_elsewhere_is_emptied_and_its_tasks_go_to_another_host() -> None:
    fleet = sixteen_cpu("h0", "h1")
    fleet.put("h0", job("small", cpu=2.0), count=2)
    fleet.put("h1", job("big", cpu=10.0))
    result = fleet.consolidate(["h0", "h1"], limit=2)
    assert result.emptied == ("h0",)
    assert set(result.moves) == {r.task_id for r in fleet.residents["h0"]}
    assert set(result.moves.values()) == {"h1"}
    assert result.kept == {"h1": "it takes tasks moved off a host that is emptied"}


def test_the_least_loaded_host_goes_first() -> None:
    fleet = sixteen_cpu("h0", "h1", "h2")
    fleet.put("h0", job("a", cpu=6.0))
    fleet.put("h1", job("b", cpu=3.0))
    fleet.put("h2", job("c", cpu=8.0))
    result = fleet.consolidate(["h0", "h1", "h2"], limit=1)
    assert result.emptied == ("h1",)
    assert result.kept["h0"].startswith("limit reached")


def test_a_task_only_its_host_satisfies_keeps_the_host_and_says_why() -> None:
    fleet = sixteen_cpu("h0", "h1")
    fleet.put("h0", job("pinned", cpu=1.0, hard={"host": "h0"}))
    result = fleet.consolidate(["h0"], limit=1)
    assert result.emptied == ()
    assert result.moves == {}
    reason = result.kept["h0"]
    assert reason.startswith("its task fits on no other busy host: ")
    assert "host" in reason.removeprefix("its task fits on no other busy host: ")


def test_tasks_too_big_for_the_holes_keep_their_host() -> None:
    fleet = sixteen_cpu("h0", "h1")
    fleet.put("h0", job("wide", cpu=8.0), count=2)
    fleet.put("h1", job("other", cpu=12.0))
    result = fleet.consolidate(["h0"], limit=1)
    assert result.emptied == ()
    assert result.kept["h0"].startswith("its 2 tasks fit on no other busy host: no capacity")


def test_the_limit_holds() -> None:
    fleet = sixteen_cpu("h0", "h1", "h2", "h3")
    fleet.put("h3", job("busy", cpu=1.0))
    result = fleet.consolidate(["h0", "h1", "h2"], limit=2)
    assert result.emptied == ("h0", "h1")
    assert result.kept == {"h2": "limit reached: at most 2 hosts emptied at once"}


def test_candidates_that_cannot_be_emptied_whatever_the_room_say_why() -> None:
    fleet = sixteen_cpu("h0", "h1")
    fleet.put("h0", job("a", cpu=1.0))
    fleet.cluster.assign(fleet.cluster.index["h1"], job("hidden").footprint())  # a task not listed
    fleet.residents["h1"] = []
    result = fleet.consolidate(["h1", "nowhere"], limit=5)
    assert result.emptied == ()
    assert result.kept == {"h1": "it holds 1 task, of which 0 may move", "nowhere": "not a registered host"}


def test_no_task_moves_onto_an_unschedulable_host() -> None:
    fleet = sixteen_cpu("h0", "h1", "h2")
    fleet.put("h0", job("a", cpu=2.0))
    fleet.put("h1", job("b", cpu=8.0))
    fleet.put("h2", job("c", cpu=4.0))
    fleet.cluster.set_schedulable("h2", False)
    result = fleet.consolidate(["h0"], limit=1)
    assert result.emptied == ("h0",)
    assert set(result.moves.values()) == {"h1"}


def test_several_hosts_emptied_together_onto_fewer_idle_hosts() -> None:
    """Three hosts hold two 7-cpu tasks each: no hole takes one, so none can be emptied alone. Together
    two of them fit on one large idle host (and three on two): one host saved either way, with the
    fewest moves by the smaller chunk."""
    small = [host(f"h{i}", cpu=16.0) for i in range(3)]
    fleet = Fleet(cluster_of([*small, host("h3", cpu=32.0), host("h4", cpu=32.0)]))
    for name in ("h0", "h1", "h2"):
        fleet.put(name, job(f"j{name}", cpu=7.0, memory=1024), count=2)
    result = fleet.consolidate(["h0", "h1", "h2"], limit=3)
    assert sorted(result.emptied) == ["h0", "h1"]
    assert len(result.moves) == 4
    assert len(set(result.moves.values())) == 1 and set(result.moves.values()) <= {"h3", "h4"}
    assert result.kept["h2"].startswith("its 2 tasks fit on no other busy host")


def test_regrouping_tasks_across_hosts_frees_a_host_no_chunk_of_them_can() -> None:
    """Tasks of 7, 6 + 3, 5 + 4 and 5 cpu on 10-cpu hosts, one host idle: no host's tasks fit the others'
    holes, and no chunk of the least-loaded hosts re-packs onto fewer with one idle host. The batch
    packing 7 + 3, 6 + 4, 5 + 5 needs three: the 6 + 3 and 5 + 4 hosts are emptied, the 3 joins the 7,
    the 5 the other 5, and the 6 and the 4 meet on the idle host."""
    fleet = Fleet(cluster_of(host(f"h{i}", cpu=10.0) for i in range(5)))
    fleet.put("h0", job("seven", cpu=7.0))
    fleet.put("h1", job("six", cpu=6.0))
    fleet.put("h1", job("three", cpu=3.0))
    fleet.put("h2", job("five", cpu=5.0))
    fleet.put("h2", job("four", cpu=4.0))
    fleet.put("h3", fleet.jobs["five"])
    result = fleet.consolidate(["h0", "h1", "h2", "h3"], limit=4)
    assert sorted(result.emptied) == ["h1", "h2"]
    assert result.moves == {
        "six-0@h1": "h4",
        "three-1@h1": "h0",
        "five-0@h2": "h3",
        "four-1@h2": "h4",
    }
    assert result.kept["h0"] == "regrouping tasks onto 1 fewer hosts empties other hosts first"


def test_settling_by_rounds_reaches_the_batch_packing_when_emptied_hosts_stay() -> None:
    """Forty tasks of 20..100 cpu arrive one at a time on 150-cpu hosts; then rounds of consolidation,
    each round's moves made, the emptied hosts left idle (``reuse``). The rounds end on as few hosts as
    the batch packer needs for the same tasks (one fewer than one-host and chunk trials reach here)."""
    sizes = [int(s) for s in np.random.default_rng(5).integers(20, 101, size=40)]
    fleet = online(sizes, hosts=-(-sum(sizes) * 13 // 1500), cpu=150.0)
    arrived = fleet.used()
    empty = cluster_of(host(f"h{i:02d}", cpu=150.0) for i in range(fleet.cluster.size))
    tasks = [PendingTask(r.task_id, r.job_id) for rs in fleet.residents.values() for r in rs]
    batch = schedule(Snapshot(0.0, empty, fleet.jobs, tasks), PROFILE, np.random.default_rng(0))
    settle(fleet, limit=5, reuse=True)
    assert fleet.used() <= len({a.host_id for a in batch.assignments}) < arrived


def test_the_cluster_given_is_not_changed_and_the_answer_is_reproducible() -> None:
    fleet = sixteen_cpu("h0", "h1", "h2")
    fleet.put("h0", job("a", cpu=2.0, ports=2))
    fleet.put("h1", job("b", cpu=6.0))
    before = cluster_state(fleet.cluster)
    first = fleet.consolidate(["h0", "h1", "h2"], limit=3, seed=4)
    assert_same(before, cluster_state(fleet.cluster))
    assert fleet.consolidate(["h0", "h1", "h2"], limit=3, seed=4) == first


# -- properties -------------------------------------------------------------------------------------


ZONES = ("z0", "z1")


@st.composite
def fleets(draw: st.DrawFn) -> tuple[Fleet, list[str], int]:
    """A few hosts in two zones, jobs (some pinned to a zone, some with ports) placed on them by the
    real scheduler, some hosts unschedulable afterwards; candidates and a limit."""
    count = draw(st.integers(2, 7))
    cpus = st.sampled_from([4.0, 8.0, 16.0])
    zones = st.sampled_from(ZONES)
    specs = [host(f"h{i}", cpu=draw(cpus), zone=draw(zones), ports=(30000, 30003)) for i in range(count)]
    cluster = cluster_of(specs)
    fleet = Fleet(cluster)
    jobs = []
    for k in range(draw(st.integers(1, 5))):
        hard = {"availability_zone": draw(st.sampled_from(ZONES))} if draw(st.booleans()) else {}
        cpu = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))
        ports, size = draw(st.integers(0, 1)), draw(st.integers(1, 6))
        jobs.append(job(f"j{k}", cpu=cpu, memory=512, ports=ports, size=size, hard=hard))
    tasks = [PendingTask(f"{j.job_id}-{i}", j.job_id, 0.0, (0.0, i)) for j in jobs for i in range(j.size)]
    seed = draw(st.integers(0, 3))
    snapshot = Snapshot(0.0, cluster, {j.job_id: j for j in jobs}, tasks)
    plan = schedule(snapshot, SPREAD, np.random.default_rng(seed))  # apart: something to consolidate
    by_id = {j.job_id: j for j in jobs}
    for a in plan.assignments:
        assert a.footprint is not None
        cluster.assign(cluster.index[a.host_id], a.footprint)
        j = by_id[a.footprint.job_id]
        fleet.jobs[j.job_id] = j
        fleet.residents[a.host_id].append(Resident(a.task_id, j.job_id, a.footprint))
    for spec in specs:
        if draw(st.integers(0, 5)) == 0:
            cluster.set_schedulable(spec.host_id, False)
    names = [s.host_id for s in specs]
    candidates = names if draw(st.booleans()) else draw(st.lists(st.sampled_from(names), unique=True))
    return fleet, candidates, draw(st.integers(0, count))


@settings(max_examples=300, deadline=None)
@given(fleets(), st.integers(0, 3))
def test_consolidation_is_sound(drawn: tuple[Fleet, list[str], int], seed: int) -> None:
    fleet, candidates, limit = drawn
    before = cluster_state(fleet.cluster)
    result = fleet.consolidate(candidates, limit, seed)
    emptied = set(result.emptied)
    event(f"hosts emptied: {min(len(emptied), 3)}{'+' if len(emptied) >= 3 else ''}")
    event(f"tasks moved: {'some' if result.moves else 'none'}")
    assert_sound(fleet, candidates, limit, result, before)


@st.composite
def packed(draw: st.DrawFn) -> Fleet:
    """Tasks of 3..7 cpu arriving one at a time on 10-cpu hosts, with idle hosts to spare; a few hosts
    unschedulable afterwards."""
    sizes = draw(st.lists(st.integers(3, 7), min_size=6, max_size=24))
    fleet = online(sizes, hosts=-(-sum(sizes) * 14 // 100) + 1, cpu=10.0)
    for host_id in list(fleet.cluster.ids):
        if draw(st.integers(0, 7)) == 0:
            fleet.cluster.set_schedulable(host_id, False)
    return fleet


@settings(max_examples=200, deadline=None)
@given(packed(), st.integers(1, 6), st.booleans())
def test_consolidation_of_an_online_packing_is_sound(fleet: Fleet, limit: int, reuse: bool) -> None:
    """Steps toward the target too: sound, and without ``reuse`` never filling more idle hosts than they
    empty."""
    cluster = fleet.cluster
    candidates = sorted(h for h, rs in fleet.residents.items() if rs)
    idle = {h for h in cluster.ids if cluster.task_count[cluster.index[h]] == 0}
    before = cluster_state(cluster)
    result = consolidate(cluster, fleet.jobs, fleet.residents, candidates, PROFILE, limit=limit, reuse=reuse)
    regrouping = any(why.startswith("regrouping") for why in result.kept.values())
    event(f"regrouping: {regrouping}, hosts emptied: {min(len(result.emptied), 2)}")
    assert_sound(fleet, candidates, limit, result, before)
    filled = set(result.moves.values()) & idle
    assert reuse or len(filled) <= len(result.emptied)


def assert_sound(
    fleet: Fleet, candidates: list[str], limit: int, result: Consolidation, before: dict[str, Any]
) -> None:
    """The cluster as it was ``before``; at most ``limit`` candidates emptied, every other candidate kept with a
    reason; every task on an emptied host moved onto a schedulable host not emptied, where it fits and
    its job's zone holds."""
    cluster = fleet.cluster
    assert_same(before, cluster_state(cluster))
    emptied = set(result.emptied)
    assert len(result.emptied) == len(emptied) <= limit
    assert emptied <= set(candidates)
    assert set(candidates) == emptied | set(result.kept) and not emptied & set(result.kept)
    moved_off = {r.task_id for h in emptied for r in fleet.residents.get(h, [])}
    assert moved_off <= set(result.moves)
    # Replay: every move lands on a schedulable host that is not emptied, fits, and keeps its job's zone.
    replay = cluster.fork()
    for host_id in emptied:
        for r in fleet.residents.get(host_id, []):
            replay.release(replay.index[host_id], r.footprint)
    owner = {r.task_id: (h, r) for h, rs in fleet.residents.items() for r in rs}
    for task_id, target in result.moves.items():
        source, r = owner[task_id]
        assert target not in emptied and target != source
        h = replay.index[target]
        assert cluster.schedulable[h]
        if source not in emptied:
            replay.release(replay.index[source], r.footprint)
        replay.assign(h, fleet.jobs[r.job_id].footprint())
        zone = fleet.jobs[r.job_id].hard.get("availability_zone")
        assert zone is None or zone == _zone(cluster, target)
    n = replay.size
    assert (replay.free[:, :n] >= -1e-9).all(), "a host is over-committed once the moves are made"


def _zone(cluster: Cluster, host_id: str) -> str:
    code = int(cluster.attribute("zone")[cluster.index[host_id]])
    return next(value for value, c in cluster.codebook["zone"].items() if c == code)
