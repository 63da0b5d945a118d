"""The leader's one front door: every command a client or an operator may give, and every query.

Each command is done once, here, as admit → decide → apply → durable: admission and team rules first
(nothing changes when they refuse), then the pure decision (``corral.jobs.commands`` through the job
manager, the capacity and credential rules), then the change through the ledger, and the answer only once
the store holds it. Routes in ``api/`` are a few lines around one call to this class; they never reach
into the state, the ledger, the writer or the agent hub. Queries answer from memory for what is active
and from the store for history, and return views (``views.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from corral.control import access, plans, views
from corral.control.admission import Admission
from corral.control.agents import AgentHub, RegistrationRefused
from corral.control.auth import Authority
from corral.control.autoscaler import Autoscaler
from corral.control.bus import BusEvent, EventBus, Subscription
from corral.control.clock import Clock
from corral.control.config import MasterConfig
from corral.control.drains import UNSURE, Drainer
from corral.control.group_drains import GroupDrainRecord, GroupDrains
from corral.control.hostgroup_views import explain_view, group_view, status_view
from corral.control.hostgroups import HostGroups
from corral.control.idempotency import IdempotencyKeys, request_hash
from corral.control.ledger import Ledger
from corral.control.manager import JobManager
from corral.control.operations import DEFAULT_DRAIN_DEADLINE_S, Operations
from corral.control.overview import Overview, overview
from corral.control.queries import Page, Queries
from corral.control.scheduling import SchedulerShell
from corral.control.sessions import AgentChannel, AgentSession
from corral.control.state import ClusterState
from corral.control.writer import RecordRejected, StoreWriter, WriterFailed
from corral.domain import wire
from corral.domain.auth import Principal, Role, Team, Token
from corral.domain.capacity import CapacityGroup, Tier
from corral.domain.codec import to_builtins, to_json
from corral.domain.errors import ConflictError, NotFoundError, ValidationError
from corral.domain.hostgroup import HostGroup
from corral.domain.job import Capacity, Job, JobDescriptor
from corral.domain.states import TaskState
from corral.domain.task import Task
from corral.fleet import Credential, ImpostorAlert
from corral.scheduler import Profile
from corral.scheduler.profile import Mode
from corral.store.lease import FencedError
from corral.store.protocol import JobQuery, StoreError, TaskQuery

__all__ = ["UNAVAILABLE", "EventFeed", "RegistrationRefused", "Service", "Submitted"]

View = dict[str, Any]
# The leader cannot answer for now (the store refuses or is gone): 503, and the client retries.
UNAVAILABLE: tuple[type[Exception], ...] = (StoreError, WriterFailed, FencedError)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: View
    created: bool  # False: an earlier submission with the same idempotency key made this job


@dataclass(slots=True)
class EventFeed:
    """An event stream's start: the snapshot (records the caller may see), then the live subscription."""

    jobs: list[Job]
    tasks: list[Task]
    subscription: Subscription

    def close(self) -> None:
        self.subscription.close()


class Service:
    def __init__(
        self,
        *,
        config: MasterConfig,
        clock: Clock,
        epoch: int,
        state: ClusterState,
        ledger: Ledger,
        writer: StoreWriter,
        bus: EventBus,
        jobs: JobManager,
        hub: AgentHub,
        scheduler: SchedulerShell,
        ops: Operations,
        drainer: Drainer,
        group_drains: GroupDrains,
        host_groups: HostGroups,
        autoscaler: Autoscaler | None,
        auth: Authority,
        admission: Admission,
        queries: Queries,
        keys: IdempotencyKeys,
        prune: Callable[[float], Any],
    ) -> None:
        self.config = config
        self.clock = clock
        self.epoch = epoch
        self._state = state
        self._ledger = ledger
        self._writer = writer
        self._bus = bus
        self._jobs = jobs
        self._hub = hub
        self._scheduler = scheduler
        self._ops = ops
        self._drainer = drainer
        self._group_drains = group_drains
        self._host_groups = host_groups
        self._autoscaler = autoscaler
        self._auth = auth
        self._admission = admission
        self._queries = queries
        self._keys = keys
        self._prune = prune

    # -- authentication ---------------------------------------------------------------------------

    def authenticate(self, secret: str) -> Principal:
        return self._auth.authenticate(secret)

    def still_valid(self, token_id: str) -> bool:
        return self._auth.still_valid(token_id)

    # -- jobs -------------------------------------------------------------------------------------

    async def submit(self, principal: Principal, descriptor: JobDescriptor, key: str = "") -> Submitted:
        """Accept a job. With an idempotency key, a retry of the same request returns the job the first
        one made (``created`` False) and a different request under the same key is refused."""
        digest = request_hash(to_json(descriptor)) if key else ""
        if key:
            earlier = await self._keys.lookup(principal, key, digest)
            if earlier is not None:
                await self._writer.flush()  # the first request may still be on its way to the store
                return Submitted(self._job_view(await self._queries.get_job(earlier)), created=False)
        self._admission.submission(principal, descriptor)
        job = self._jobs.submit(descriptor, team=principal.team, submitted_by=principal.name)
        if key:
            self._keys.remember(principal, key, digest, job.id)
        try:
            await self._writer.flush(job.id)
        except RecordRejected as e:
            # The store cannot hold what was sent: nothing of it stays, and the caller is told why.
            self._keys.forget(principal, key)
            self._state.drop_job(job.id)
            self._state.set_aside.lift(job.id)
            raise ValidationError("unstorable_job", f"the store refused the job: {e.reason}") from e
        return Submitted(self._job_view(job), created=True)

    async def kill_job(self, principal: Principal, job_id: str) -> View:
        access.check_change(principal, await self._active_job(job_id))
        job = self._jobs.kill_job(job_id, by=principal.name)
        await self._durable(job.id)
        return self._job_view(job)

    async def resize(self, principal: Principal, job_id: str, capacity: Capacity) -> View:
        known = await self._active_job(job_id)
        access.check_change(principal, known)
        self._admission.resize(principal, known, capacity)
        job = self._jobs.resize(job_id, capacity, by=principal.name)
        await self._durable(job.id)
        return self._job_view(job)

    async def set_enabled(self, principal: Principal, job_id: str, enabled: bool) -> View:
        access.check_change(principal, await self._active_job(job_id))
        job = self._jobs.set_enabled(job_id, enabled, by=principal.name)
        await self._durable(job.id)
        return self._job_view(job)

    async def update_job(self, principal: Principal, job_id: str, descriptor: JobDescriptor) -> View:
        """A new spec for a service: a new version and its rollout when the container changed."""
        known = await self._active_job(job_id)
        access.check_change(principal, known)
        job, started = self._jobs.update(job_id, descriptor, by=principal.name)
        await self._durable(job.id)
        return {**self._job_view(job), "rollout_started": started}

    async def deploy_red_black(self, principal: Principal, descriptor: JobDescriptor) -> View:
        """The next job of the descriptor's job group beside the active one, which is disabled once the new
        one is healthy (``rollback`` on the new job brings the old one back)."""
        previous = self._jobs.red_black_previous(descriptor)
        if previous is not None:
            access.check_change(principal, previous)  # replacing a job is changing it
        self._admission.submission(principal, descriptor)
        job = self._jobs.deploy_red_black(descriptor, team=principal.team, by=principal.name)
        await self._durable(job.id)
        return self._job_view(job)

    async def promote(self, principal: Principal, job_id: str) -> View:
        access.check_change(principal, await self._active_job(job_id))
        job = self._jobs.promote(job_id, by=principal.name)
        await self._durable(job.id)
        return self._job_view(job)

    async def rollback(self, principal: Principal, job_id: str, to: int | None) -> View:
        access.check_change(principal, await self._active_job(job_id))
        job = self._jobs.rollback(job_id, to, by=principal.name)
        await self._durable(job.id)
        return self._job_view(job)

    async def job_versions(self, principal: Principal, job_id: str) -> list[View]:
        job = await self._queries.get_job(job_id)
        access.check_read(self.config.read_scope, principal, job)
        return views.versions_view(job)

    async def rollout(self, principal: Principal, job_id: str) -> View:
        job = await self._queries.get_job(job_id)
        access.check_read(self.config.read_scope, principal, job)
        return views.rollout_view(job, self._state.tasks_of(job.id), self.clock())

    async def get_job(self, principal: Principal, job_id: str) -> View:
        job = await self._queries.get_job(job_id)
        access.check_read(self.config.read_scope, principal, job)
        return self._job_view(job)

    async def list_jobs(self, principal: Principal, query: JobQuery) -> tuple[list[View], str | None]:
        page: Page[Job] = await self._queries.list_jobs(query)
        scope = self.config.read_scope
        items = [self._job_view(j) for j in page.items if access.may_read(scope, principal, j.team)]
        return items, page.next_after

    async def plan_job(self, principal: Principal, descriptor: JobDescriptor) -> View:
        """A dry run of a submission, admitted as one (a plan costs trial placements: it counts against
        the submission rate too): where its tasks would go now and, for those that would wait, what would
        make them fit. Nothing is stored, placed or sent."""
        self._admission.submission(principal, descriptor)
        self._ops.require_group(descriptor.capacity_group)
        return plans.plan_view(self._state, self.profile, descriptor, self.clock(), team=principal.team)

    # -- tasks ------------------------------------------------------------------------------------

    async def kill_task(self, principal: Principal, task_id: str, shrink: bool) -> View:
        task = await self._queries.get_task(task_id)
        access.check_change(principal, await self._queries.get_job(task.job_id))
        if task.id not in self._state.tasks or task.is_finished:
            raise ConflictError("task_finished", f"task {task_id} has already finished")
        killed = self._jobs.kill_task(task_id, shrink, by=principal.name)
        await self._durable(killed.id)
        return self._task_view(killed)

    async def get_task(self, principal: Principal, task_id: str) -> View:
        return self._task_view(await self._readable_task(principal, task_id))

    async def list_tasks(self, principal: Principal, query: TaskQuery) -> tuple[list[View], str | None]:
        page = await self._queries.list_tasks(query)
        items = page.items
        if self._scoped(principal):
            teams = {j: (await self._queries.get_job(j)).team for j in {t.job_id for t in items}}
            items = [t for t in items if access.may_read("team", principal, teams[t.job_id])]
        return [self._task_view(t) for t in items], page.next_after

    async def placement(self, principal: Principal, task_id: str, top: int = 5) -> View:
        """Why a task waits; for one on a host, its host against the ``top`` best others now."""
        task = await self._readable_task(principal, task_id)
        out: View = {"task_id": task.id, "state": task.state.value, "host_id": task.host_id}
        out["ready_at"] = task.ready_at
        if task.state is TaskState.ACCEPTED:
            out["pending"] = views.pending_view(self._state, task, self._scheduler.explain(task.id))
        live = self._state.tasks.get(task.id)
        if live is not None and live.on_host:
            out["ranking"] = plans.ranking_view(self._state, self.profile, live, top)
        return out

    async def logs(
        self, principal: Principal, task_id: str, tail: int | None, follow: bool
    ) -> AsyncIterator[str]:
        task = await self._readable_task(principal, task_id)
        return await self._hub.logs.open(task, tail, follow)

    # -- hosts ------------------------------------------------------------------------------------

    def hosts(self) -> list[View]:
        return [
            views.host_view(self._state, h) for h in sorted(self._state.hosts.values(), key=lambda h: h.id)
        ]

    def host(self, host_id: str) -> View:
        host = self._state.hosts.get(host_id)
        if host is None:
            raise NotFoundError("host", host_id)
        return views.host_view(self._state, host)

    async def set_draining(self, host_id: str, draining: bool, deadline_s: float | None = None) -> View:
        if deadline_s is None:
            await self._ops.set_draining(host_id, draining, self.clock())
        else:
            await self._ops.set_draining(host_id, draining, self.clock(), deadline_s)
        self._drainer.next_at = None  # plan at the next turn of the loop
        self._ledger.wake.set()
        return self.host(host_id)

    async def drain_group(self, group: str, percent: float, deadline_s: float | None) -> View:
        """Drain a host group a partition at a time (each empty before the next starts)."""
        deadline = DEFAULT_DRAIN_DEADLINE_S if deadline_s is None else deadline_s
        record = await self._group_drains.start(group, percent, deadline, self.clock())
        return self._group_drain_view(record)

    async def change_group_drain(self, group: str, action: str) -> View:
        if action == "cancel":
            record = await self._group_drains.cancel(group, self.clock())
        else:
            record = await self._group_drains.resume(group, self.clock())
        return self._group_drain_view(record)

    # -- host groups and the autoscaler ------------------------------------------------------------

    async def put_host_group(self, group: HostGroup) -> View:
        """Create or replace a host group's configuration (validated; kept across restarts)."""
        await self._host_groups.put(group)
        return group_view(self._state, self._autoscaler, group)

    async def delete_host_group(self, name: str) -> None:
        """Forget a group's configuration: its hosts stay, the autoscaler leaves them alone."""
        await self._host_groups.delete(name)

    def host_groups(self) -> list[View]:
        groups = sorted(self._state.host_groups.values(), key=lambda g: g.name)
        return [group_view(self._state, self._autoscaler, g) for g in groups]

    def host_group(self, name: str) -> View:
        return group_view(self._state, self._autoscaler, self._host_groups.get(name))

    def explain_host_group(self, name: str) -> View:
        """Per host why it is kept ("why not scaled down") or what its removal waits for."""
        return explain_view(self._state, self._autoscaler, self._host_groups.get(name))

    def group_drain(self, group: str) -> View:
        return self._group_drain_view(self._group_drains.get(group))

    def _group_drain_view(self, record: GroupDrainRecord) -> View:
        drain = record.drain
        parts = []
        for i, hosts in enumerate(drain.partitions):
            remaining = {h: len(self._state.tasks_on_host(h)) for h in hosts}
            parts.append({"index": i, "hosts": list(hosts), "tasks_remaining": remaining})
        return {
            "group": drain.group,
            "state": drain.state,
            "percent": drain.percent,
            "current": drain.current,
            "describe": drain.describe(),
            "started_at": drain.started_at,
            "partition_started_at": drain.partition_started_at,
            "deadline_s": record.deadline_s,
            "partitions": parts,
        }

    def drain_status(self, host_id: str) -> View:
        """What each task still on a draining host waits for: its budget, a time window, its replacement
        (and why that replacement is pending: no room elsewhere, say), its batch deadline."""
        host = self.host(host_id)
        entry = self._state.drained.get(host_id)
        tasks = self._state.tasks_on_host(host_id)
        rows = []
        for task in sorted(tasks, key=lambda t: t.id):
            wait = self._drainer.waits.get(task.id)
            row: View = {"task_id": task.id, "job_id": task.job_id, "state": task.state.value}
            if task.kill_reason is not None:
                row.update(kind="stopping", detail=f"being stopped ({task.kill_reason.value})")
            elif self._drainer.unsure:
                row.update(kind="leader", detail=UNSURE)
            elif wait is not None:
                row.update(kind=wait.kind, detail=wait.detail)
            else:
                row.update(kind="planning", detail="the next drain plan decides")
            if task.relocating_to is not None:
                row["replacement"] = task.relocating_to
                pending = self._scheduler.explain(task.relocating_to)
                if pending is not None:
                    row["replacement_pending"] = to_builtins(pending).get("message", "")
            rows.append(row)
        return {
            "host_id": host_id,
            "draining": entry is not None,
            "since": entry.since if entry else None,
            "deadline_s": entry.deadline_s if entry else None,
            "schedulable": host["schedulable"],
            "remaining": len(tasks),
            "tasks": rows,
        }

    def unquarantine(self, host_id: str) -> View:
        return views.host_view(self._state, self._hub.quarantine.lift(host_id))

    # -- capacity groups and the scheduler -------------------------------------------------------

    def groups(self) -> list[View]:
        groups = sorted(self._state.groups.values(), key=lambda g: g.name)
        return [views.group_view(self._state, g) for g in groups]

    def group(self, name: str) -> View:
        return views.group_view(self._state, self._ops.group(name))

    async def create_group(self, group: CapacityGroup) -> View:
        return views.group_view(self._state, await self._ops.create_group(group))

    async def put_group(self, group: CapacityGroup) -> View:
        return views.group_view(self._state, await self._ops.put_group(group))

    async def delete_group(self, name: str) -> None:
        await self._ops.delete_group(name)

    @property
    def profile(self) -> Profile:
        return self._scheduler.profile

    def scheduler_stats(self) -> View:
        stats: View = to_builtins(self._scheduler.stats)
        return stats

    async def set_mode(self, tier: Tier, mode: Mode) -> Profile:
        return await self._ops.set_mode(tier, mode)

    # -- credentials and teams -------------------------------------------------------------------

    async def create_token(
        self, admin: Principal, name: str, team: str, role: Role, ttl_s: float | None, host: str = ""
    ) -> tuple[str, Token]:
        return await self._auth.create_token(name, team, role, ttl_s, created_by=admin.name, host=host)

    def tokens(self) -> list[Token]:
        return sorted(self._auth.tokens.values(), key=lambda t: t.created_at)

    async def revoke_token(self, token_id: str) -> Token:
        return await self._auth.revoke(token_id)

    def teams(self) -> list[Team]:
        return sorted(self._auth.teams.values(), key=lambda t: t.name)

    async def put_team(self, team: Team) -> Team:
        return await self._auth.put_team(team)

    async def delete_team(self, name: str) -> None:
        active = sum(1 for j in self._state.jobs.values() if j.is_active and j.team == name)
        await self._auth.delete_team(name, active)

    # -- operators: alerts, set-aside jobs, pruning ----------------------------------------------

    def alerts(self) -> list[View]:
        """What waits for an operator: unknown tasks left running (nothing killed), registrations refused
        for a host that belongs to another credential, and jobs set aside after they raised."""
        out: list[View] = []
        for alert in self._hub.alerts:
            kind = "impostor" if isinstance(alert, ImpostorAlert) else "unknown_tasks"
            out.append({"kind": kind, **to_builtins(alert)})
        for aside in self._state.set_aside.all():
            out.append(
                {
                    "kind": "job_set_aside",
                    "id": aside.alert_id,
                    "job_id": aside.job_id,
                    "at": aside.at,
                    "stage": aside.stage,
                    "error": aside.error,
                    "message": aside.message,
                }
            )
        return out

    async def resolve_alert(self, alert_id: str, action: str) -> View:
        """``kill``/``keep`` an alert's unknown tasks, ``dismiss`` an impostor alert, ``retry`` a job set
        aside."""
        aside = next((a for a in self._state.set_aside.all() if a.alert_id == alert_id), None)
        if aside is not None:
            if action != "retry":
                raise ValidationError(
                    "invalid_action", f"alert {alert_id} is a job set aside: its action is retry", "action"
                )
            self._state.set_aside.lift(aside.job_id)
            self._ledger.schedule_needed = True
            self._ledger.touch(aside.job_id)
            return {"resolved": {"kind": "job_set_aside", **to_builtins(aside)}, "action": action}
        known = next((a for a in self._hub.alerts if a.id == alert_id), None)
        if known is None:
            raise NotFoundError("alert", alert_id)
        if isinstance(known, ImpostorAlert):
            if action not in ("dismiss", "keep"):
                raise ValidationError("invalid_action", "an impostor alert is dismissed", "action")
        elif action not in ("kill", "keep"):
            raise ValidationError("invalid_action", "resolve unknown tasks with kill or keep", "action")
        alert = self._hub.resolve_alert(alert_id, kill=action == "kill")
        kind = "impostor" if isinstance(alert, ImpostorAlert) else "unknown_tasks"
        return {"resolved": {"kind": kind, **to_builtins(alert)}, "action": action}

    async def prune(self, older_than_s: float) -> int:
        pruned: int = await self._prune(older_than_s)
        return pruned

    # -- the cluster at a glance ------------------------------------------------------------------

    def overview(self, principal: Principal, top: int) -> Overview:
        if self._scoped(principal):
            team = principal.team
            return overview(self._state, self.clock(), top, visible=lambda job: job.team == team)
        return overview(self._state, self.clock(), top)

    def status(self) -> View:
        state = self._state
        return {
            "epoch": self.epoch,
            "jobs": dict(Counter(j.state.value for j in state.jobs.values())),
            "tasks": dict(Counter(t.state.value for t in state.tasks.values())),
            "hosts": dict(Counter(h.state.value for h in state.hosts.values())),
            "pending": state.pending_count,
            "scheduler": self.scheduler_stats(),
            "writer": {
                "batches": self._writer.batches,
                "records": self._writer.records,
                "backlog": self._writer.backlog,
                "mean_commit_ms": round(1000 * self._writer.busy_s / max(1, self._writer.batches), 2),
            },
            "alerts": self.alerts(),
            "jobs_set_aside": len(state.set_aside),
            "drains": {
                "hosts": len(state.drained),
                "relocating": len(state.relocating()),
                "plans": self._drainer.plans,
                "last_plan_ms": round(self._drainer.plan_ms, 3),
                "plan_ms_total": round(self._drainer.plan_ms_total, 3),
                "leader_unsure": self._drainer.unsure,
            },
            "autoscaler": status_view(self._autoscaler),
        }

    @property
    def state(self) -> ClusterState:
        """For the metrics exporter, which reads gauges off the leader's state at each scrape."""
        return self._state

    def alert_count(self) -> int:
        return self.reconciliation_alerts() + len(self._state.set_aside)

    def reconciliation_alerts(self) -> int:
        return len(self._hub.alerts)

    def budget(self) -> View:
        """The unknown-task budget of this leader's term, for operators."""
        book = self._hub.book
        return {"killed": len(book.killed), "tripped": book.tripped, "held": len(book.held)}

    # -- events -----------------------------------------------------------------------------------

    def subscribe(self, principal: Principal, job: str | None, snapshot: bool) -> EventFeed:
        """Subscribe first, then read the snapshot, so no change falls between the two."""
        state = self._state
        scoped = self._scoped(principal)

        def visible(job_id: Any) -> bool:
            if not scoped:
                return True
            j = state.jobs.get(job_id) if isinstance(job_id, str) else None
            return j is not None and j.team == principal.team

        def wanted(event: BusEvent) -> bool:
            if event.kind == "job":
                return (job is None or event.data.get("id") == job) and visible(event.data.get("id"))
            if event.kind == "task":
                return (job is None or event.data.get("job_id") == job) and visible(event.data.get("job_id"))
            return job is None or event.kind == "overflow"

        subscription = self._bus.subscribe(wanted)
        scope = self.config.read_scope
        jobs = (
            [
                j
                for j in state.jobs.values()
                if (job is None or j.id == job) and access.may_read(scope, principal, j.team)
            ]
            if snapshot
            else []
        )
        tasks = [t for j in jobs for t in state.tasks_of(j.id)]
        return EventFeed(jobs, tasks, subscription)

    # -- agents -----------------------------------------------------------------------------------

    async def agent_register(
        self, channel: AgentChannel, msg: wire.Register, agent: Principal
    ) -> AgentSession:
        """Register an agent (RegistrationRefused when its credential may not register that host)."""
        credential = Credential(agent.token_id, agent.host or None)
        return await self._hub.register(channel, msg, credential)

    def agent_message(self, session: AgentSession, msg: wire.Message) -> None:
        self._hub.on_message(session, msg)

    def agent_gone(self, session: AgentSession, why: str) -> None:
        self._hub.disconnect(session, why)

    # -- helpers ----------------------------------------------------------------------------------

    async def _durable(self, ident: str) -> None:
        """Answer only once the record is in the store (a record the store refused: its job is set aside,
        and the caller hears that the change was not kept)."""
        try:
            await self._writer.flush(ident)
        except RecordRejected as e:
            raise ConflictError("not_stored", f"the store refused {ident}: {e.reason}") from e

    async def _active_job(self, job_id: str) -> Job:
        """404 for a job that never existed; 409 for one that finished and left memory."""
        job = await self._queries.get_job(job_id)
        if job.id not in self._state.jobs:
            raise ConflictError("job_finished", f"job {job_id} has already finished")
        return job

    async def _readable_task(self, principal: Principal, task_id: str) -> Task:
        task = await self._queries.get_task(task_id)
        if self._scoped(principal):
            access.check_read("team", principal, await self._queries.get_job(task.job_id))
        return task

    def _scoped(self, principal: Principal) -> bool:
        return self.config.read_scope == "team" and not principal.is_admin

    def _job_view(self, job: Job) -> View:
        return views.job_view(self._state, job)

    def _task_view(self, task: Task) -> View:
        return views.task_view(self._state, task, self._scheduler.explain(task.id))
