"""``handle(view, event, now, policy) -> Decision``: the master's side of the agent protocol, decided.

Registration and status reports are reconciled against the tasks the leader places on the host (DESIGN.md
§4): its own tasks are brought up to date, launches that never arrived go out again, tasks the agent no
longer runs are ended; a task the agent runs that the leader knows is not meant to run there is killed;
a task the leader has no record of at all falls to the unknown-task rule (``budget``). Ticks enforce
heartbeats and the deadline of hosts the leader waits for. Purely computational: the shell
(control/agents.py) owns the sessions, channels and outbox, and applies the Decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from corral.domain import wire
from corral.domain.states import FinishedReason, TaskState
from corral.domain.stimuli import Ended, HostLost, ProbesReported, Reconnected, Reported
from corral.domain.task import Task
from corral.fleet import budget, identity
from corral.fleet.book import FleetBook, ImpostorAlert, Stranger
from corral.fleet.decision import Decision, Draft, Refusal, SessionClose, Unreachable
from corral.fleet.events import Disconnected, FleetEvent, Registered, ResolveAlert, StatusReported, Tick
from corral.fleet.policy import FleetPolicy
from corral.fleet.view import FleetView


def handle(view: FleetView, event: FleetEvent, now: float, policy: FleetPolicy) -> Decision:
    """What to do about ``event`` at ``now``: orders for the shell and the next FleetBook."""
    draft = Draft(view.book)
    match event:
        case Registered():
            _registered(view, draft, event, now, policy)
        case StatusReported():
            _status(view, draft, event, now, policy)
        case Tick():
            _tick(view, draft, now, event.late_s, policy)
        case Disconnected():
            current = view.sessions.get(event.host_id)
            if current is not None and current.session_id == event.session_id:
                draft.closes.append(SessionClose(event.host_id, event.session_id, event.why))
                _lose_host(view, draft, event.host_id, event.why, now)
            # else: a session already replaced (or never accepted) went away: nothing changes
        case ResolveAlert():
            _resolve(view, draft, event)
    return draft.done()


def next_deadline(book: FleetBook, view: FleetView, policy: FleetPolicy) -> float | None:
    """When the shell should Tick next: the first awaited host's deadline, the first session's heartbeat
    deadline, or the end of the settling time if held unknown tasks wait only for it."""
    times = [*book.awaiting.values()]
    times.extend(s.last_seen + policy.heartbeat_timeout_s for s in view.sessions.values())
    if book.held and budget.quorum(book, policy):
        times.append(budget.settle_end(book, policy))
    return min(times, default=None)


# -- registration ---------------------------------------------------------------------------------


def _registered(view: FleetView, draft: Draft, event: Registered, now: float, policy: FleetPolicy) -> None:
    host = event.host_id
    verdict = identity.verdict(view, event)
    if verdict.refusal is not None:
        draft.refused = verdict.refusal
        draft.log("warning", f"registration as host {host} refused: {verdict.refusal.message}")
        if verdict.impostor:
            identity.record_impostor(draft, event, now)
        return
    draft.accept_session = True
    if verdict.mint:
        draft.mint_credential_for = host
        draft.replace_credential = verdict.replaces
        if verdict.replaces is not None:
            why = f"its credential {verdict.replaces} never reached its agent: a new one replaces it"
            draft.log("warning", f"host {host} joins again with its join token; {why}")
    old = view.sessions.get(host)
    if old is not None and old.session_id != event.session_id:
        draft.closes.append(
            SessionClose(host, old.session_id, "replaced by a new connection from the same agent")
        )
    book = draft.book
    awaiting = {h: due for h, due in book.awaiting.items() if h != host}
    running = {
        **book.reported_running,
        host: sum(1 for r in event.reports if r.state is not TaskState.FINISHED),
    }
    draft.book = replace(
        book,
        awaiting=awaiting,
        reported=book.reported | {host} if host in book.expected else book.reported,
        reported_running=running,
        # What the agent reports now is the whole truth about it: its held tasks are judged from this report.
        held=tuple(s for s in book.held if s.host_id != host),
    )
    strangers = _reconcile(view, draft, host, event.reports, event.finished_in_store, now)
    budget.consider(view, draft, strangers, now, policy)
    draft.log("info", f"agent {host} registered with {len(event.reports)} tasks")


def _reconcile(
    view: FleetView,
    draft: Draft,
    host: str,
    reports: Iterable[wire.TaskReport],
    finished_in_store: frozenset[str],
    now: float,
) -> list[Stranger]:
    """Rule 1 for the tasks the leader places on ``host``; rule 2 for the rest (returns the unknown)."""
    reported = {r.task_id: r for r in reports}
    for task in view.tasks_on_host(host):
        report = reported.pop(task.id, None)
        if report is not None:
            _apply_report(view, draft, host, task, report, now)
        elif task.kill_reason is not None:
            draft.stimulate(task.id, Ended(task.kill_reason, now, "gone from its host when it reconnected"))
        elif task.effective_state is TaskState.LAUNCHED:
            # Placed, but the launch never reached the agent (lost with a connection or a master): nothing
            # ran, so send it again rather than count the task as lost.
            if task.state is TaskState.DISCONNECTED:
                draft.stimulate(task.id, Reconnected(now))
            draft.launches.append(task.id)
        else:
            draft.stimulate(task.id, Ended(FinishedReason.LOST, now, f"host {host} reconnected without it"))
    return _others(view, draft, host, reported.values(), finished_in_store)


def _apply_report(
    view: FleetView, draft: Draft, host: str, task: Task, report: wire.TaskReport, now: float
) -> None:
    if task.state is TaskState.DISCONNECTED:
        draft.stimulate(task.id, Reconnected(now))  # a report is proof the host is back
    draft.stimulate(task.id, Reported(report.state, now, report.reason, report.detail, report.exit_code))
    if report.probes is not None and report.probes != task.probes and report.state is not TaskState.FINISHED:
        draft.stimulate(task.id, ProbesReported(report.probes, now))
    if report.state is TaskState.FINISHED:
        draft.forget(host, task.id)
    elif task.kill_reason is not None:
        draft.kill(host, wire.KillSpec(task.id, task.kill_reason, view.kill_grace_s(task)))


def _others(
    view: FleetView,
    draft: Draft,
    host: str,
    reports: Iterable[wire.TaskReport],
    finished_in_store: frozenset[str],
) -> list[Stranger]:
    """Rule 2: reports of tasks the leader does not place on ``host``. Returns the unknown ones."""
    strangers: list[Stranger] = []
    known: list[str] = []
    gone: set[Stranger] = set()
    for report in reports:
        task_id = report.task_id
        if report.state is TaskState.FINISHED:
            draft.forget(host, task_id)  # (a tolerated task too: today's hub never let the agent forget it)
            gone.add(Stranger(host, task_id))
        elif task_id in draft.book.tolerated:
            continue
        elif view.task(task_id) is not None or task_id in finished_in_store:
            # The leader's own records say this task must not run here: not an unknown task, and not
            # counted against the unknown-task budget.
            known.append(task_id)
            draft.kill(host, wire.KillSpec(task_id, FinishedReason.KILLED, 0.0))
        else:
            strangers.append(Stranger(host, task_id))
    book = draft.book
    if gone & set(book.held) or gone & book.condemned:
        draft.book = replace(
            book, held=tuple(s for s in book.held if s not in gone), condemned=book.condemned - gone
        )
    if known:
        draft.log("warning", f"killing {len(known)} tasks on {host} that should not run there")
    return strangers


# -- status, ticks, disconnects -------------------------------------------------------------------


def _status(view: FleetView, draft: Draft, event: StatusReported, now: float, policy: FleetPolicy) -> None:
    host = event.host_id
    current = view.sessions.get(host)
    if current is None or current.session_id != event.session_id:
        return  # a report from a session that was replaced or closed: its agent is not the host any more
    others: list[wire.TaskReport] = []
    for report in event.reports:
        task = view.task(report.task_id)
        if task is not None and task.host_id == host and task.on_host:
            _apply_report(view, draft, host, task, report, now)
        else:
            others.append(report)
    strangers = _others(view, draft, host, others, event.finished_in_store)
    budget.consider(view, draft, strangers, now, policy)


def _tick(view: FleetView, draft: Draft, now: float, late_s: float, policy: FleetPolicy) -> None:
    """Silence is judged up to when the leader last listened: a tick ``late_s`` past its due time means
    the leader's own loop was busy or starved since, and what the agents sent meanwhile is still unread
    in its sockets (under load a leader stalled 15 s and then found every host silent)."""
    heard_until = now - late_s
    if late_s >= policy.heartbeat_timeout_s / 2:
        draft.log("warning", f"the leader's loop stalled {late_s:.1f}s: silence is judged up to before it")
    for host, session in view.sessions.items():
        silent = heard_until - session.last_seen
        if silent >= policy.heartbeat_timeout_s:
            draft.closes.append(SessionClose(host, session.session_id, f"no heartbeat for {silent:.1f}s"))
            _lose_host(view, draft, host, f"missed heartbeats for {silent:.1f}s", now)
    due = [host for host, deadline in draft.book.awaiting.items() if deadline <= heard_until]
    if due:
        awaiting = {h: d for h, d in draft.book.awaiting.items() if h not in due}
        draft.book = replace(draft.book, awaiting=awaiting)
        for host in due:
            never = f"host {host} did not come back within {policy.lost_after_s:g}s"
            for task in view.tasks_on_host(host):
                draft.stimulate(task.id, Ended(task.kill_reason or FinishedReason.LOST, now, never))
            draft.log("warning", never)
    budget.consider(view, draft, (), now, policy)


def _lose_host(view: FleetView, draft: Draft, host: str, why: str, now: float) -> None:
    """The host's session is gone: its tasks are Disconnected until it returns (or they are lost)."""
    draft.unreachable.append(Unreachable(host, why))
    for task in view.tasks_on_host(host):
        draft.stimulate(task.id, HostLost(now, f"host {host} unreachable: {why}"))
    book = draft.book
    draft.book = replace(
        book,
        held=tuple(s for s in book.held if s.host_id != host),  # judged again when it registers
        reported_running={h: n for h, n in book.reported_running.items() if h != host},
    )
    draft.log("warning", f"host {host} unreachable: {why}")


def _resolve(view: FleetView, draft: Draft, event: ResolveAlert) -> None:
    alert = draft.book.alert(event.alert_id)
    if alert is None:
        draft.refused = Refusal(404, "alert_not_found", f"alert {event.alert_id!r} does not exist")
    elif isinstance(alert, ImpostorAlert):
        identity.dismiss(draft, alert)  # nothing was accepted, so nothing to kill or keep
    else:
        budget.resolve(view, draft, alert, event.kill)
