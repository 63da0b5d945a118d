"""The cluster autoscaler's shell: gathers what the rule needs, asks it, applies what it decides.

Each round (``autoscale_interval_s``): the providers' instances (at most every ``provider_list_s``), the
tasks pending long enough for a reason more hosts could fix, the exact shortfall by trial placement
(``corral.autoscale.trial``), the hosts whose tasks could all run elsewhere (``corral.scheduler
.consolidate``, only when nothing waits), then ``corral.autoscale.decide`` per group. Applying a decision
writes the group's record first (so a new leader never asks twice), then undrains cancelled removals,
drains new ones (make before break: ``control/drains.py`` moves their tasks within budgets), terminates
what is drained and empty, and asks the provider for the new size. A provider call that fails backs off
exponentially with jitter. A leader that cannot trust its picture of the fleet removes and terminates
nothing and says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from corral.autoscale import trial
from corral.autoscale.backoff import retry_after
from corral.autoscale.decide import Context, GroupInput, decide, scale_down_room
from corral.autoscale.demand import not_yet_created, old_enough
from corral.autoscale.model import GroupDecision, GroupRecord, HostCondition, HostView, Kept
from corral.autoscale.movable import job_blocker, task_blocker
from corral.control.agents import AgentHub
from corral.control.classes import class_key
from corral.control.hostgroups import HostGroups
from corral.control.metrics import Metrics
from corral.control.operations import Operations
from corral.control.scheduling import SchedulerShell
from corral.control.state import ClusterState
from corral.domain.hostgroup import HostGroup
from corral.domain.job import Job
from corral.domain.states import HostState, TaskState
from corral.providers import Instance, Provider
from corral.scheduler import JobClass, PendingReason, PendingTask, Profile
from corral.scheduler.consolidate import Resident, consolidate

log = logging.getLogger(__name__)

# Reasons more hosts could fix (not a group limit, a crash loop or a retry delay).
FIXABLE = {
    PendingReason.NO_HOSTS,
    PendingReason.NO_CAPACITY,
    PendingReason.NO_PORTS,
    PendingReason.NO_NETWORK,
    PendingReason.CONSTRAINT,
    PendingReason.QUARANTINED,
}
RETRY_TERMINATE_S = 60.0  # a host asked to terminate and still running this long after is asked again
MAX_NOT_CREATED = 100_000  # a job's tasks not yet created sized for per round, at most
HISTORY = 200  # decisions kept for ``corral hostgroup explain`` and the console


ProviderFactory = Callable[[HostGroup], Provider]


@dataclass(slots=True)
class Listing:
    at: float
    instances: Sequence[Instance]


@dataclass(frozen=True, slots=True)
class Action:
    at: float
    group: str
    action: str  # scale_up | scale_to | remove | cancel | terminate | error | unsure
    detail: str


@dataclass(slots=True)
class RoundStats:
    rounds: int = 0
    last_ms: float = 0.0
    shortfall_ms: float = 0.0
    shortfall_ms_max: float = 0.0
    consolidation_ms: float = 0.0
    last_pending: int = 0
    last_wanted: dict[str, int] = field(default_factory=dict)
    unfixable: dict[str, str] = field(default_factory=dict)  # task -> why no new host helps (sample)


class Autoscaler:
    def __init__(
        self,
        state: ClusterState,
        hub: AgentHub,
        ops: Operations,
        scheduler: SchedulerShell,
        groups: HostGroups,
        providers: ProviderFactory,
        metrics: Metrics,
        *,
        list_every_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.hub = hub
        self.ops = ops
        self.scheduler = scheduler
        self.groups = groups
        self.make_provider = providers
        self.metrics = metrics
        self.list_every_s = list_every_s
        self.clock = clock
        self.providers: dict[str, tuple[HostGroup, Provider]] = {}
        self.listings: dict[str, Listing] = {}
        self.bad_since: dict[str, float] = {}
        self.unneeded_since: dict[str, float] = {}  # idle, or its tasks fit elsewhere, since (this term)
        self.asked_terminate: dict[str, float] = {}  # host -> when this leader asked (not re-asked soon)
        self.decisions: dict[str, GroupDecision] = {}
        self.history: deque[Action] = deque(maxlen=HISTORY)
        self.stats = RoundStats()
        self._job_verdicts: tuple[float, dict[str, Kept | None]] = (math.nan, {})  # (round, job -> verdict)
        self.trusted = True
        self.young = 0  # tasks pending for a fixable reason, not yet long enough to count
        self._random = random.Random()

    # -- one round ------------------------------------------------------------------------------

    async def round(self) -> None:
        groups = dict(self.state.host_groups)
        if not groups:
            return
        started = time.perf_counter()
        now = self.clock()
        self.trusted = self.hub.picture_complete(now)
        await self._refresh_listings(groups, now)
        hosts = self._hosts_by_group(groups, now)
        wanted, pending = self._shortfall(groups, hosts, now)
        consolidation: dict[str, dict[str, Kept | None]] = {}
        blocked: dict[str, dict[str, Kept]] = {}
        if self.trusted and not pending:
            consolidation, blocked = self._consolidation(groups, hosts, now)
        hosts = self._mark_unneeded(hosts, consolidation, now)
        ctx = Context(now, self.trusted, pending, self.young)
        for name, group in sorted(groups.items()):
            record = self.groups.records.get(name, GroupRecord())
            listing = self.listings.get(name)
            inp = self._input(group, record, hosts.get(name, []), listing, now)
            inp = replace(
                inp,
                wanted=wanted.get(name, 0),
                consolidation=consolidation.get(name, {}),
                blocked=blocked.get(name, {}),
            )
            decision = decide(inp, ctx)
            if decision.scale_to is not None or decision.remove or decision.terminate or decision.cancel:
                log.info(
                    "autoscaler round: group %s: %d hosts (%s), %d coming, %s listed, wanted %d, record %s",
                    name,
                    len(inp.hosts),
                    ", ".join(f"{h.host_id}:{h.condition.value}/{h.tasks}" for h in inp.hosts),
                    inp.coming,
                    inp.instances,
                    inp.wanted,
                    record,
                )
            self.decisions[name] = decision
            try:
                await self._apply(group, record, decision, now)
            except Exception as e:  # one group's failure never stops the others, nor the leader
                log.exception("autoscaling host group %s failed: %s", name, e)
                self._note(now, name, "error", str(e))
        self._forget_terminated()
        self.stats.rounds += 1
        self.stats.last_ms = (time.perf_counter() - started) * 1000
        self.metrics.autoscaler_decision.observe(self.stats.last_ms / 1000)

    def _forget_terminated(self) -> None:
        """Hosts this autoscaler terminated leave the leader's view once they hold nothing (the hourly
        housekeeping would forget them too; until then an operator would see them as unreachable)."""
        for record in self.groups.records.values():
            for host_id in record.terminated:
                host = self.state.hosts.get(host_id)
                if host is None or host.state is HostState.READY:
                    continue
                if not self.state.tasks_on_host(host_id):
                    del self.state.hosts[host_id]

    def _input(
        self,
        group: HostGroup,
        record: GroupRecord,
        hosts: list[HostView],
        listing: Listing | None,
        now: float,
    ) -> GroupInput:
        registered = {h.host_id for h in hosts}
        if listing is None:
            return GroupInput(group, record, hosts)
        live = [i for i in listing.instances if i.state in ("pending", "running")]
        listed = {i.host_id for i in listing.instances if i.state != "terminated"}
        gone = frozenset(
            {i.host_id for i in listing.instances if i.state == "terminated"}
            | {h for h in registered if h not in listed and listing.at > self._registered_at(h) + 1.0}
            | {h for h in record.terminating if h not in listed}
        )
        running = {i.host_id for i in listing.instances if i.state in ("pending", "running")}
        retry = frozenset(
            h
            for h in record.terminating
            if h in running
            and now - self.asked_terminate.get(h, -RETRY_TERMINATE_S) >= RETRY_TERMINATE_S
            and listing.at > self.asked_terminate.get(h, -1.0)
        )
        coming = sum(1 for i in live if i.host_id not in registered)
        return GroupInput(group, record, hosts, coming, gone, len(live), retry)

    def _registered_at(self, host_id: str) -> float:
        host = self.state.hosts.get(host_id)
        return host.registered_at if host is not None else 0.0

    # -- gathering ------------------------------------------------------------------------------

    def _provider(self, group: HostGroup) -> Provider:
        found = self.providers.get(group.name)
        if found is not None and found[0].provider == group.provider:
            return found[1]
        if found is not None:
            found[1].close()
        provider = self.make_provider(group)
        self.providers[group.name] = (group, provider)
        return provider

    async def _refresh_listings(self, groups: Mapping[str, HostGroup], now: float) -> None:
        for name, group in groups.items():
            if not group.scalable:
                self.listings.pop(name, None)
                continue
            listing = self.listings.get(name)
            if listing is not None and now - listing.at < self.list_every_s:
                continue
            record = self.groups.records.get(name, GroupRecord())
            if record.retry_at is not None and now < record.retry_at:
                continue
            try:
                provider = self._provider(group)
                instances = await asyncio.to_thread(provider.list, group)
            except Exception as e:
                await self._failed(group, record, "list", e, now)
                continue
            self.listings[name] = Listing(self.clock(), list(instances))

    def _mark_unneeded(
        self,
        hosts: dict[str, list[HostView]],
        consolidation: Mapping[str, Mapping[str, Kept | None]],
        now: float,
    ) -> dict[str, list[HostView]]:
        """Each host's ``unneeded_since``: when it was first seen idle or emptiable, without a break."""
        out: dict[str, list[HostView]] = {}
        seen: set[str] = set()
        for name, views in hosts.items():
            emptiable = {h for h, kept in consolidation.get(name, {}).items() if kept is None}
            marked = []
            for v in views:
                if v.idle or v.host_id in emptiable:
                    since = self.unneeded_since.setdefault(v.host_id, now)
                    seen.add(v.host_id)
                    v = replace(v, unneeded_since=since)
                marked.append(v)
            out[name] = marked
        for host_id in list(self.unneeded_since):
            if host_id not in seen:
                del self.unneeded_since[host_id]
        return out

    def _hosts_by_group(self, groups: Mapping[str, HostGroup], now: float) -> dict[str, list[HostView]]:
        out: dict[str, list[HostView]] = {name: [] for name in groups}
        seen: set[str] = set()
        for host in self.state.hosts.values():
            name = host.attributes.host_group
            if name not in out:
                continue
            seen.add(host.id)
            bad, detail = _badness(host.quarantined, host.healthy, host.state, host.health_detail)
            if bad:
                since = self.bad_since.setdefault(host.id, now)
            else:
                self.bad_since.pop(host.id, None)
                since = None
            tasks = sum(1 for t in self.state.tasks_on_host(host.id) if t.on_host)
            condition = HostCondition.READY if host.state is HostState.READY else HostCondition.UNREACHABLE
            out[name].append(
                HostView(
                    host.id,
                    condition,
                    tasks,
                    host.schedulable,
                    host.draining,
                    since,
                    detail,
                    host.registered_at,
                )
            )
        for host_id in list(self.bad_since):
            if host_id not in seen:
                del self.bad_since[host_id]
        return out

    def _eligible(
        self, groups: Mapping[str, HostGroup], now: float
    ) -> tuple[dict[str, JobClass], list[PendingTask]]:
        """Pending tasks old enough, for a reason more hosts could fix, as the scheduler takes them."""
        scalable = [g for g in groups.values() if g.scalable]
        if not scalable:
            return {}, []
        after = min(g.pending_after_s for g in scalable)
        reasons = self.scheduler.pending_reasons
        waiting: list[tuple[str, str, float]] = []
        for task_id, pending in reasons.items():
            if pending.reason not in FIXABLE:
                continue
            task = self.state.tasks.get(task_id)
            if task is None or task.state is not TaskState.ACCEPTED:
                continue
            waiting.append((task_id, task.job_id, now - max(task.created_at, task.ready_at)))
        chosen, self.young = old_enough(waiting, after)
        if not chosen:
            return {}, []
        jobs, tasks, _waits = self.scheduler.describe(now)
        out = [t for t in tasks if t.task_id in chosen]
        # Tasks a job has not created yet (the unstarted cap holds them back) are sized for as well.
        for key in sorted({t.job_id for t in out}):
            job = self.state.jobs.get(key.partition("@v")[0])
            if job is None or key != job.id:
                continue
            held = min(not_yet_created(job, self.state.tasks_of(job.id)), MAX_NOT_CREATED)
            out += [PendingTask(f"{job.id}#{i}", key, now, (now, 1 << 30)) for i in range(held)]
        return dict(jobs), out

    def _shortfall(
        self, groups: Mapping[str, HostGroup], hosts: Mapping[str, list[HostView]], now: float
    ) -> tuple[dict[str, int], int]:
        jobs, tasks = self._eligible(groups, now)
        self.stats.last_pending = len(tasks)
        if not tasks:
            self.stats.last_wanted = {}
            self.stats.unfixable = {}
            return {}, 0
        started = time.perf_counter()
        scalable = [g for g in groups.values() if g.scalable]
        room: dict[str, int] = {}
        coming: dict[str, int] = {}
        for g in scalable:
            listing = self.listings.get(g.name)
            registered = {h.host_id for h in hosts.get(g.name, [])}
            arriving = 0
            if listing is not None:
                arriving = sum(
                    1
                    for i in listing.instances
                    if i.state in ("pending", "running") and i.host_id not in registered
                )
            coming[g.name] = arriving
            room[g.name] = max(0, g.upper - len(registered) - arriving)
        result = trial.shortfall(self.state.cluster, jobs, tasks, scalable, room, coming, now=now)
        self.stats.shortfall_ms = (time.perf_counter() - started) * 1000
        self.stats.shortfall_ms_max = max(self.stats.shortfall_ms_max, self.stats.shortfall_ms)
        self.stats.last_wanted = dict(result.hosts)
        self.stats.unfixable = dict(list(result.unfixable.items())[:20])
        return dict(result.hosts), len(tasks)

    def _consolidation(
        self, groups: Mapping[str, HostGroup], hosts: Mapping[str, list[HostView]], now: float
    ) -> tuple[dict[str, dict[str, Kept | None]], dict[str, dict[str, Kept]]]:
        """Per group: which busy hosts could be emptied (None) or why not; which hosts' tasks may not move."""
        state = self.state
        candidates: list[str] = []
        residents: dict[str, list[Resident]] = {}
        blocked: dict[str, dict[str, Kept]] = {}
        group_of: dict[str, str] = {}
        limit = 0
        keep_idle: set[str] = set()
        jobs: dict[str, JobClass] = {}
        for name, group in groups.items():
            if not group.scalable:
                continue
            views = hosts.get(name, [])
            record = self.groups.records.get(name, GroupRecord())
            # Idle hosts receive no moved task: one kept idle stays idle, one above min idle is removed.
            keep_idle |= {v.host_id for v in views if v.idle}
            limit += scale_down_room(GroupInput(group, record, views))
            for view in views:
                if view.host_id in record.removing or view.condition is not HostCondition.READY:
                    continue
                if not view.schedulable or view.tasks == 0:
                    continue
                why = self._residents(view.host_id, now, residents, jobs)
                if why is not None:
                    blocked.setdefault(name, {})[view.host_id] = why
                    continue
                candidates.append(view.host_id)
                group_of[view.host_id] = name
        out: dict[str, dict[str, Kept | None]] = {}
        if not candidates or limit <= 0:
            return out, blocked
        started = time.perf_counter()
        cluster = trial.detached(state.cluster)
        for host_id in keep_idle:
            h = cluster.index.get(host_id)
            if h is not None:
                cluster.schedulable[h] = False
        candidates.sort(key=lambda h: (len(residents.get(h, [])), h))
        result = consolidate(cluster, jobs, residents, candidates, Profile(), limit=limit, now=now)
        self.stats.consolidation_ms = (time.perf_counter() - started) * 1000
        for host_id in candidates:
            name = group_of[host_id]
            if host_id in result.emptied:
                out.setdefault(name, {})[host_id] = None
            else:
                detail = result.kept.get(host_id, "its tasks fit nowhere else")
                out.setdefault(name, {})[host_id] = Kept("tasks_fit_nowhere", detail)
        return out, blocked

    def _job_blocker(self, job: Job, now: float) -> Kept | None:
        """``job_blocker`` once per job and round (``now``): it reads every task of the job, and a round
        weighs every task on every candidate host (per task, a 5,000-task burst froze the loop)."""
        at, verdicts = self._job_verdicts
        if at != now:
            verdicts = {}
            self._job_verdicts = (now, verdicts)
        if job.id not in verdicts:
            verdicts[job.id] = job_blocker(job, self.state.tasks_of(job.id), now)
        return verdicts[job.id]

    def _residents(
        self, host_id: str, now: float, residents: dict[str, list[Resident]], jobs: dict[str, JobClass]
    ) -> Kept | None:
        """The host's tasks as consolidation moves them, or why they may not move now."""
        state = self.state
        out: list[Resident] = []
        for task in state.tasks_on_host(host_id):
            if not task.on_host:
                continue
            job = state.jobs.get(task.job_id)
            if job is None or job.id in state.set_aside:
                return Kept("unknown_job", f"task {task.id}'s job cannot be weighed (set aside or unknown)")
            why = task_blocker(job, task) or self._job_blocker(job, now)
            if why is not None:
                return why
            key = job.id if task.version == job.version else class_key(job.id, task.version)
            if key not in jobs:
                jobs[key] = state.classes.of(job, task.version)
            footprint = jobs[key].footprint(task.ports, task.interface, task.address)
            out.append(Resident(task.id, key, footprint))
        residents[host_id] = out
        return None

    # -- applying -------------------------------------------------------------------------------

    async def _apply(self, group: HostGroup, before: GroupRecord, d: GroupDecision, now: float) -> None:
        name = group.name
        await self.groups.keep(name, d.record)
        for host_id in d.cancel:
            await self.ops.set_draining(host_id, False, now)
            self._note(now, name, "cancel", f"{host_id}: removal cancelled, tasks are waiting for room")
        for host_id, removal in d.remove.items():
            if host_id in self.state.drained:  # drained already (by an operator): keep its deadline
                continue
            await self.ops.set_draining(host_id, True, now, group.removal_deadline_s)
            self._note(now, name, "remove", f"{host_id}: {removal.reason}")
        record = d.record
        if d.terminate:
            for host_id in d.terminate:
                if any(t.on_host for t in self.state.tasks_on_host(host_id)):  # never with a task
                    log.error("refusing to terminate %s: it holds tasks", host_id)
                    continue
                self.asked_terminate[host_id] = now
            ids = [h for h in d.terminate if h in self.asked_terminate and self.asked_terminate[h] == now]
            if ids:
                try:
                    await asyncio.to_thread(self._provider(group).terminate, group, ids)
                except Exception as e:
                    await self._failed(group, record, "terminate", e, now)
                    return
                self.listings.pop(name, None)  # look again before deciding on these hosts
                self._note(now, name, "terminate", ", ".join(ids))
        if d.scale_to is not None:
            try:
                await asyncio.to_thread(self._provider(group).scale_to, group, d.scale_to)
            except Exception as e:
                await self._failed(group, replace(record, desired=before.desired), "scale_to", e, now)
                return
            self.listings.pop(name, None)
            hosts = "host" if d.scale_to == 1 else "hosts"
            self._note(now, name, "scale_to", f"{d.scale_to} {hosts}: {d.scale_reason or 'size'}")
        if record.failures:
            await self.groups.keep(name, replace(record, failures=0, retry_at=None, last_error=""))

    async def _failed(
        self, group: HostGroup, record: GroupRecord, call: str, error: BaseException, now: float
    ) -> None:
        failures = record.failures + 1
        throttled = bool(getattr(error, "throttled", False))
        wait = retry_after(failures, self._random.random(), throttled=throttled)
        message = f"{call}: {error}"
        log.warning("provider of host group %s failed (%s); retrying in %.1fs", group.name, message, wait)
        self._note(now, group.name, "error", message)
        await self.groups.keep(
            group.name, replace(record, failures=failures, retry_at=now + wait, last_error=message)
        )

    def _note(self, now: float, group: str, action: str, detail: str) -> None:
        self.history.append(Action(now, group, action, detail))
        self.metrics.autoscaler_actions.labels(group, action).inc()
        if action != "error":
            log.info("autoscaler: host group %s: %s %s", group, action, detail)

    def close(self) -> None:
        for _group, provider in self.providers.values():
            try:
                provider.close()
            except Exception as e:  # closing is best effort
                log.warning("closing a provider failed: %s", e)
        self.providers.clear()


def _badness(quarantined: bool, healthy: bool, state: HostState, detail: str) -> tuple[bool, str]:
    if quarantined:
        return True, "quarantined"
    if not healthy:
        return True, f"unhealthy ({detail})" if detail else "unhealthy"
    if state is HostState.UNREACHABLE:
        return True, "unreachable"
    return False, ""
