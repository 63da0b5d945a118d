"""What would happen to a job submitted now, and for the tasks that would wait, what would make them fit.

``plan_job(snapshot, job, count, profile, ...)`` places the job's tasks as the real scheduler would (the
profile, the queue already waiting, the capacity group's hard limit), then tries, each on a fork:

- the capacity group's limit: the exact rise per limited dimension that admits every task left (the
  tasks of the same group queued before it take the room first);
- new hosts: ``trial.shortfall`` onto hypothetical hosts of each configured host group;
- running tasks finishing: the fewest running tasks of one other job (else of the fewest jobs), on the
  hosts the job's constraints allow, whose release lets every task fit — a bounded search;
- and when nothing tried helps, the scheduler's own reason (``explain``), as the plan gave it.

Pure: the snapshot's cluster is forked, never changed; randomness is the seed. Suggestions are data: a
kind, the numbers, a sentence.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from corral.autoscale.trial import TRIAL_PROFILE, add_hosts, shortfall
from corral.domain.capacity import DEFAULT_GROUP
from corral.domain.hostgroup import HostGroup
from corral.domain.resources import ZERO
from corral.scheduler import (
    Cluster,
    JobClass,
    Pending,
    PendingReason,
    PendingTask,
    Placement,
    Plan,
    Profile,
    Snapshot,
    schedule,
)
from corral.scheduler.cluster import Floats, vector
from corral.scheduler.context import EPS, build_context

FIELDS = ("cpu", "memory_mb", "disk_mb", "network_mbps", "gpu")  # Resources' names, as limits are set
TOP_HOSTS = 20  # hosts listed one by one; a larger job's other hosts are summed up
MAX_CANDIDATES = 8  # other jobs tried one at a time for "after its tasks finish"
MAX_COMBINED = 4  # jobs released together when no single one is enough
MAX_TRIALS = 64  # trial placements spent on "after tasks finish", at most
MAX_LISTED = 20  # task ids named in a suggestion


class SuggestionKind(StrEnum):
    GROUP_LIMIT = "group_limit"  # the capacity group's hard limit rises by these amounts
    MORE_HOSTS = "more_hosts"  # new hosts of these host groups
    NO_HOST_GROUP = "no_host_group"  # no host group is configured: new hosts cannot be tried
    NO_SHAPE = "no_shape"  # no configured group (with room) has a shape that holds the task
    AFTER_TASKS_FINISH = "after_tasks_finish"  # once these running tasks of other jobs finish
    SCHEDULER_REASON = "scheduler_reason"  # nothing tried helps: the scheduler's own reason


@dataclass(frozen=True, slots=True)
class Running:
    """A task on a host now, with what it holds there (releasing it frees exactly this)."""

    task_id: str
    job_id: str
    host_id: str
    footprint: Placement


@dataclass(frozen=True, slots=True)
class Suggestion:
    kind: SuggestionKind
    message: str
    tasks: int = 0  # of the tasks it was tried for, how many it lets run
    tried: int = 0  # how many tasks it was tried for
    complete: bool = False  # it lets every one of them run
    with_limit: bool = False  # counted as if the capacity group's limit admitted the tasks (see group_limit)
    group: str = ""  # group_limit: the capacity group
    rise: dict[str, float] = field(default_factory=dict)  # group_limit: per dimension, how much more
    limit: dict[str, float] = field(default_factory=dict)  # group_limit: the limit that would do
    hosts: dict[str, int] = field(default_factory=dict)  # more_hosts: new hosts per host group
    cost: float = 0.0  # more_hosts: what they cost (the groups' cost per host)
    jobs: dict[str, int] = field(default_factory=dict)  # after_tasks_finish: running tasks per job
    task_ids: tuple[str, ...] = ()  # after_tasks_finish: which (the first MAX_LISTED)
    on_hosts: tuple[str, ...] = ()  # after_tasks_finish: the hosts they free
    reason: str = ""  # scheduler_reason: the scheduler's PendingReason
    rejections: dict[str, int] = field(default_factory=dict)  # scheduler_reason: hosts per filter


@dataclass(frozen=True, slots=True)
class HostCount:
    host_id: str
    tasks: int


@dataclass(frozen=True, slots=True)
class Reason:
    """The scheduler's own explanation for some of the job's tasks left pending."""

    reason: PendingReason
    message: str
    tasks: int
    rejections: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlanResult:
    tasks: int
    placed: int
    hosts: tuple[HostCount, ...] = ()  # most tasks first, at most TOP_HOSTS
    other_hosts: int = 0  # hosts beyond those listed ...
    other_tasks: int = 0  # ... and the tasks they would take
    zones: dict[str, int] = field(default_factory=dict)  # tasks per zone
    unplaced: int = 0
    reasons: tuple[Reason, ...] = ()
    suggestions: tuple[Suggestion, ...] = ()
    queued: int = 0  # tasks of other jobs planned in the same iteration (the queue already waiting)


def plan_job(
    snapshot: Snapshot,
    job: JobClass,
    count: int,
    profile: Profile,
    *,
    host_groups: Sequence[HostGroup] = (),
    running: Sequence[Running] = (),
    services: Collection[str] = (),
    seed: int = 0,
) -> PlanResult:
    """Where ``count`` tasks of ``job`` (a class not in ``snapshot``) would go now, and what would fit the
    rest. ``snapshot`` holds the cluster and the tasks already waiting; ``running``: the tasks on hosts;
    ``services``: the jobs among theirs that are services (their tasks end only when they shrink)."""
    mine = [PendingTask(f"{job.job_id}#{i}", job.job_id, 0.0, (job.created_at, i)) for i in range(count)]
    jobs = {**snapshot.jobs, job.job_id: job}
    first = replace(snapshot, jobs=jobs, tasks=[*snapshot.tasks, *mine])
    plan = schedule(first, profile, np.random.default_rng(seed))
    ids = {t.task_id for t in mine}
    landed = [a for a in plan.assignments if a.task_id in ids]
    left = [p for p in plan.pending if p.task_id in ids]
    per_host = Counter(a.host_id for a in landed)
    ranked = sorted(per_host.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ranked[:TOP_HOSTS]
    result = PlanResult(
        tasks=count,
        placed=len(landed),
        hosts=tuple(HostCount(h, n) for h, n in shown),
        other_hosts=len(ranked) - len(shown),
        other_tasks=sum(n for _, n in ranked[TOP_HOSTS:]),
        zones=_zones(snapshot.cluster, per_host),
        unplaced=len(left),
        reasons=_reasons(left),
        queued=len(plan.assignments) - len(landed),
    )
    if not left:
        return result
    suggestions: list[Suggestion] = []
    base_plan, base_snapshot = plan, first
    held = [p for p in left if p.reason is PendingReason.GROUP_LIMIT]
    if held:
        base_snapshot, base_plan, limit = _lift_limit(first, job, ids, len(left), profile, seed)
        suggestions.append(limit)
    still = {p.task_id: p for p in base_plan.pending if p.task_id in ids}
    if still:
        rest = [t for t in mine if t.task_id in still]
        base = _charged(base_snapshot.cluster, base_plan)
        with_limit = bool(held)
        fixes = [
            *_more_hosts(base, job, rest, host_groups, snapshot.now, seed, with_limit),
            *_after_finish(base, job, rest, running, profile, snapshot.now, seed, with_limit, services),
        ]
        suggestions.extend(fixes)
        if not any(s.complete for s in fixes):
            suggestions.extend(_scheduler_reasons(list(still.values())))
    return replace(result, suggestions=tuple(suggestions))


# -- the capacity group's limit -------------------------------------------------------------------


def _bucket(snapshot: Snapshot, job: JobClass) -> str:
    """The capacity group the queue puts the job in (an unknown group: the default one)."""
    return job.group if job.group in snapshot.groups or job.group == DEFAULT_GROUP else DEFAULT_GROUP


def _lift_limit(
    first: Snapshot, job: JobClass, ids: set[str], left: int, profile: Profile, seed: int
) -> tuple[Snapshot, Plan, Suggestion]:
    """Schedule again with the job's group unlimited: the rise is what the group then holds, plus what
    its still-unplaced tasks need, over the limit."""
    name = _bucket(first, job)
    group = first.groups[name]
    lifted = replace(first, groups={**first.groups, name: replace(group, limit=None)})
    plan = schedule(lifted, profile, np.random.default_rng(seed))
    by_task = {t.task_id: t.job_id for t in lifted.tasks}
    usage = vector(lifted.usage.get(name) or ZERO)
    for a in plan.assignments:
        cls = lifted.jobs[by_task[a.task_id]]
        if _bucket(lifted, cls) == name:
            usage += vector(cls.request)
    still = sum(1 for p in plan.pending if p.task_id in ids)
    req = vector(job.request)
    need = usage + req * still
    cap = vector(group.limit or ZERO)
    rise: dict[str, float] = {}
    to: dict[str, float] = {}
    for d, dim in enumerate(FIELDS):
        if cap[d] > 0 and req[d] > 0 and need[d] > cap[d] + EPS:
            more = _round_up(float(need[d] - cap[d]), dim)
            rise[dim] = more
            to[dim] = _round_up(float(cap[d]) + more, dim)
    parts = ", ".join(f"{dim} by {rise[dim]:g} (to {to[dim]:g})" for dim in rise) or "its limit"
    fitting = max(0, left - still)
    if still == 0:
        message = f"fits if capacity group {name}'s limit rises: {parts}"
    else:
        message = (
            f"capacity group {name}'s limit must rise ({parts}) to admit them; {fitting} of the {left} "
            "tasks would then fit, the rest also need room (below)"
        )
    suggestion = Suggestion(
        SuggestionKind.GROUP_LIMIT,
        message,
        tasks=fitting,
        tried=left,
        complete=still == 0,
        group=name,
        rise=rise,
        limit=to,
    )
    return lifted, plan, suggestion


def _round_up(value: float, dim: str) -> float:
    if dim == "cpu":
        return math.ceil(value * 1000 - 1e-6) / 1000
    return float(math.ceil(value - 1e-9))


# -- new hosts ------------------------------------------------------------------------------------


def hosts_in_group(cluster: Cluster, group: str) -> int:
    """Hosts registered with ``host_group`` = ``group`` (whatever their condition)."""
    code = cluster.lookup("host_group", group)
    return 0 if code is None else int(np.count_nonzero(cluster.attribute("host_group") == code))


def _more_hosts(
    base: Cluster,
    job: JobClass,
    rest: list[PendingTask],
    groups: Sequence[HostGroup],
    now: float,
    seed: int,
    with_limit: bool,
) -> list[Suggestion]:
    n = len(rest)
    if not groups:
        message = "no host group is configured: new hosts cannot be tried (a host group gives their shape)"
        return [Suggestion(SuggestionKind.NO_HOST_GROUP, message, tried=n, with_limit=with_limit)]
    room = {g.name: max(0, g.upper - hosts_in_group(base, g.name)) for g in groups}
    found = shortfall(base, {job.job_id: job}, rest, groups, room, now=now, seed=seed)
    out: list[Suggestion] = []
    tail = " (once the capacity group's limit admits them)" if with_limit else ""
    costs = {g.name: g.cost_per_host for g in groups}
    manual = sorted(g.name for g in groups if not g.scalable)
    best = len(found.placed)
    options = sorted(found.options, key=lambda o: (-len(o.placed), o.cost, o.total, sorted(o.hosts.items())))
    chosen = [o for o in options if dict(o.hosts) == dict(found.hosts)][:1]
    alternatives = [o for o in options if len(o.placed) == best and o not in chosen]
    for option in [*chosen, *alternatives][:3]:
        hosts = dict(sorted(option.hosts.items()))
        what = " and ".join(
            f"{k} more host{'s' if k != 1 else ''} of host group {g}" for g, k in hosts.items()
        )
        placed = len(option.placed)
        if placed == n:
            message = f"fits with {what}{tail}"
        else:
            message = f"{what} would hold {placed} of the {n} tasks{tail}"
        cost = sum(k * costs.get(g, 0.0) for g, k in hosts.items())
        by_hand = [g for g in hosts if g in manual]
        if by_hand:
            message += f"; {', '.join(by_hand)} is not autoscaled: an operator adds them"
        out.append(
            Suggestion(
                SuggestionKind.MORE_HOSTS,
                message,
                tasks=placed,
                tried=n,
                complete=placed == n,
                with_limit=with_limit,
                hosts=hosts,
                cost=cost,
            )
        )
    if found.unfixable:
        k = len(found.unfixable)
        why = _why_not(job, groups, room, found.hosts, now, seed)
        out.append(
            Suggestion(
                SuggestionKind.NO_SHAPE,
                f"new hosts do not help {k} of the {n} tasks: {why}",
                tried=k,
                with_limit=with_limit,
            )
        )
    return out


def _why_not(
    job: JobClass,
    groups: Sequence[HostGroup],
    room: Mapping[str, int],
    asked: Mapping[str, int],
    now: float,
    seed: int,
) -> str:
    """Why new hosts leave tasks out (``trial.shortfall`` gives one wording for every cause)."""
    usable = [g for g in groups if room[g.name] > 0]
    if not usable:
        return "every host group is at its max size"
    if not _a_shape_holds(job, usable, now, seed):
        shapes = ", ".join(f"{g.name} ({_shape(g)})" for g in usable)
        return f"no host group's shape can hold a task of the job: {shapes}"
    if all(asked.get(g.name, 0) >= room[g.name] for g in usable):
        return "the host groups that could hold them reach their max size first"
    return "new hosts of the host groups do not make room for them (the job's constraints)"


def _shape(g: HostGroup) -> str:
    r = g.shape.resources
    return f"cpu {r.cpu:g}, memory_mb {r.memory_mb}, gpu {r.gpu}"


def _a_shape_holds(job: JobClass, groups: Sequence[HostGroup], now: float, seed: int) -> bool:
    """Whether a new, empty host of one of ``groups`` could hold one task of the job."""
    if not groups:
        return False
    cluster = Cluster()
    for g in groups:
        add_hosts(cluster, g, 1)
    task = PendingTask(f"{job.job_id}#shape", job.job_id)
    plan = schedule(
        Snapshot(now, cluster, {job.job_id: job}, [task]), TRIAL_PROFILE, np.random.default_rng(seed)
    )
    return bool(plan.assignments)


# -- running tasks finishing ----------------------------------------------------------------------


def _after_finish(
    base: Cluster,
    job: JobClass,
    rest: list[PendingTask],
    running: Sequence[Running],
    profile: Profile,
    now: float,
    seed: int,
    with_limit: bool,
    services: Collection[str] = (),
) -> list[Suggestion]:
    """The fewest running tasks of one other job (else of the fewest jobs, greedily) whose release lets
    every task in ``rest`` fit, on the hosts the job's own constraints allow."""
    n = base.size
    if n == 0:
        return []
    allowed = build_context(base, job, need_zones=False).static
    by_job: dict[str, list[Running]] = {}
    for r in running:
        h = base.index.get(r.host_id)
        if h is not None and h < n and allowed[h] and r.job_id != job.job_id:
            by_job.setdefault(r.job_id, []).append(r)
    if not by_job:
        return []
    orders = {j: _release_order(base, job, tasks) for j, tasks in by_job.items()}
    candidates = sorted(orders, key=lambda j: (-orders[j][1], len(orders[j][0]), j))[:MAX_CANDIDATES]
    trials = _Trials(base, job, rest, profile, now, seed)
    best: tuple[int, str] | None = None
    for j in candidates:
        order = orders[j][0]
        if best is not None and best[0] <= 1:
            break
        smallest = trials.smallest((), order)
        if smallest is not None and (best is None or (smallest, j) < best):
            best = (smallest, j)
    tail = " (once the capacity group's limit admits them)" if with_limit else ""
    if best is not None:
        k, j = best
        released = orders[j][0][:k]
        hosts = tuple(dict.fromkeys(r.host_id for r in released))
        where = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
        if j in services:
            message = (
                f"fits once service job {j} shrinks by {k} running task{'s' if k != 1 else ''} (on {where})"
            )
        else:
            message = f"fits after {k} running task{'s' if k != 1 else ''} of job {j} finish (on {where})"
        message += tail
        return [_finish_suggestion(message, {j: k}, released, hosts, len(rest), with_limit)]
    # No one job is enough: release whole jobs in the same order until everything fits, then trim the last.
    done = list(orders[candidates[0]][0])
    counts = {candidates[0]: len(done)}
    for j in candidates[1:MAX_COMBINED]:
        order = orders[j][0]
        smallest = trials.smallest(tuple(done), order)
        if smallest is not None:
            counts[j] = smallest
            released = [*done, *order[:smallest]]
            hosts = tuple(dict.fromkeys(r.host_id for r in released))
            listed = ", ".join(
                f"{job_id} ({k}{', a service: it shrinks' if job_id in services else ''})"
                for job_id, k in counts.items()
            )
            message = f"fits after the running tasks of jobs {listed} finish{tail}"
            return [_finish_suggestion(message, counts, released, hosts, len(rest), with_limit)]
        if trials.spent >= MAX_TRIALS:
            break
        done.extend(order)
        counts[j] = len(order)
    return []


def _finish_suggestion(
    message: str,
    counts: dict[str, int],
    released: Sequence[Running],
    hosts: tuple[str, ...],
    tried: int,
    with_limit: bool,
) -> Suggestion:
    return Suggestion(
        SuggestionKind.AFTER_TASKS_FINISH,
        message,
        tasks=tried,
        tried=tried,
        complete=True,
        with_limit=with_limit,
        jobs=dict(counts),
        task_ids=tuple(r.task_id for r in released[:MAX_LISTED]),
        on_hosts=hosts,
    )


def _release_order(base: Cluster, job: JobClass, tasks: list[Running]) -> tuple[list[Running], int]:
    """A job's running tasks in the order to release them, and how many of the planned job's tasks
    releasing them all would make room for (its rank among the candidates).

    In rounds of slots: each host's first slot (the fewest of its tasks whose release makes room for one
    more task of the planned job), cheapest first, then every host's second slot, and so on; tasks that
    make no slot come last. Releasing a prefix of this order spreads the room over hosts, which a job
    with ``unique_host`` or ``zone_balance`` needs and a packing one does not mind."""
    req = vector(job.request)
    dims = [int(d) for d in np.flatnonzero(req > 0)]
    by_host: dict[int, list[Running]] = {}
    for r in tasks:
        by_host.setdefault(base.index[r.host_id], []).append(r)
    rounds: list[list[tuple[int, str, list[Running]]]] = []
    useless: list[Running] = []
    for h, on_host in by_host.items():
        free = base.free[:, h].copy()
        before = _room(free, req, dims)
        batch: list[Running] = []
        slot = 0
        for r in sorted(on_host, key=lambda r: (-r.footprint.request.cpu, r.task_id)):
            free += vector(r.footprint.request)
            batch.append(r)
            gained = _room(free, req, dims) - before
            while slot < gained:  # one release can make several slots: the batch counts for the first
                if slot == len(rounds):
                    rounds.append([])
                if batch:
                    rounds[slot].append((len(batch), base.ids[h], batch))
                batch = []
                slot += 1
        useless.extend(batch)
    order = [r for level in rounds for _, _, batch in sorted(level, key=lambda x: x[:2]) for r in batch]
    return [*order, *useless], sum(len(level) for level in rounds)


def _room(free: Floats, req: Floats, dims: Sequence[int]) -> int:
    if not dims:
        return 1 << 20
    return max(0, min(math.floor(float(free[d] + EPS) / float(req[d])) for d in dims))


class _Trials:
    """Trial placements of ``rest`` after releasing running tasks, counted against MAX_TRIALS."""

    def __init__(
        self,
        base: Cluster,
        job: JobClass,
        rest: list[PendingTask],
        profile: Profile,
        now: float,
        seed: int,
    ) -> None:
        self.base, self.job, self.rest = base, job, rest
        self.profile, self.now, self.seed = profile, now, seed
        self.spent = 0

    def fits(self, released: Sequence[Running]) -> bool:
        self.spent += 1
        cluster = self.base.fork()
        for r in released:
            cluster.release(cluster.index[r.host_id], r.footprint)
        snapshot = Snapshot(self.now, cluster, {self.job.job_id: self.job}, self.rest)
        plan = schedule(snapshot, self.profile, np.random.default_rng(self.seed))
        return len(plan.assignments) == len(self.rest)

    def smallest(self, done: tuple[Running, ...], order: list[Running]) -> int | None:
        """The fewest of ``order`` (a prefix) that, released with ``done``, let everything fit."""
        if self.spent >= MAX_TRIALS or not self.fits([*done, *order]):
            return None
        low, high = 1, len(order)  # releasing ``high`` fits
        while low < high and self.spent < MAX_TRIALS:
            mid = (low + high) // 2
            if self.fits([*done, *order[:mid]]):
                high = mid
            else:
                low = mid + 1
        return high


# -- helpers --------------------------------------------------------------------------------------


def _charged(cluster: Cluster, plan: Plan) -> Cluster:
    """A fork of ``cluster`` holding ``plan``'s placements."""
    out = cluster.fork()
    for a in plan.assignments:
        if a.footprint is not None:
            out.assign(out.index[a.host_id], a.footprint)
    return out


def _zones(cluster: Cluster, per_host: Mapping[str, int]) -> dict[str, int]:
    names = {code: name for name, code in cluster.codebook.get("zone", {}).items()}
    column = cluster.attribute("zone")
    out: Counter[str] = Counter()
    for host_id, k in per_host.items():
        code = int(column[cluster.index[host_id]])
        out[names.get(code, "-")] += k
    return dict(sorted(out.items()))


def _reasons(left: Sequence[Pending]) -> tuple[Reason, ...]:
    groups: dict[tuple[PendingReason, str], list[Pending]] = {}
    for p in left:
        groups.setdefault((p.reason, p.message), []).append(p)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0][0].value, kv[0][1]))
    return tuple(Reason(r, m, len(ps), dict(ps[0].rejections)) for (r, m), ps in ordered)


def _scheduler_reasons(left: Sequence[Pending]) -> list[Suggestion]:
    return [
        Suggestion(
            SuggestionKind.SCHEDULER_REASON,
            f"nothing tried makes {r.tasks} task{'s' if r.tasks != 1 else ''} fit: {r.message}",
            tried=r.tasks,
            reason=r.reason.value,
            rejections=r.rejections,
        )
        for r in _reasons(left)
    ]
