"""The unknown-task rule: when a task an agent runs, and this leader has no record of, may be killed.

The seeds' lesson (a master that loaded bad state "killed production"): a leader only kills such tasks
when it can trust what it knows, and only a few of them.

- Whole picture first: nothing is judged until ``quorum_pct`` of the hosts the leader expects have
  registered (or every one of them is back or declared lost) and ``settle_s`` has passed since it took
  office. Until then unknown tasks are held: no kill, no alert.
- A fleet-wide budget: across all agents since this leader took office, at most
  ``max(unknown_kill_min, unknown_kill_pct % of the fleet's running tasks)`` unknown tasks are killed.
  A batch that would pass it kills none of its tasks, trips the budget and raises one alert; while
  tripped, every later unknown task is alerted, not killed, until an operator resolves every open alert.
- A leader whose state is not trusted kills no unknown task at all: it alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from corral.domain import wire
from corral.domain.states import FinishedReason
from corral.fleet.book import FleetBook, ReconciliationAlert, Stranger
from corral.fleet.decision import Draft, Refusal
from corral.fleet.policy import FleetPolicy
from corral.fleet.view import FleetView


def quorum(book: FleetBook, policy: FleetPolicy) -> bool:
    """Enough of the expected hosts are back (or none is awaited any more: back or declared lost)."""
    if not book.awaiting or not book.expected:
        return True
    return len(book.reported & book.expected) * 100 >= policy.quorum_pct * len(book.expected)


def settle_end(book: FleetBook, policy: FleetPolicy) -> float:
    return book.took_office_at + policy.settle_s


def picture_complete(book: FleetBook, now: float, policy: FleetPolicy) -> bool:
    return now >= settle_end(book, policy) and quorum(book, policy)


def fleet_running(view: FleetView, book: FleetBook) -> int:
    """The fleet's running tasks: what the leader holds, or what the agents report if that is more (a
    leader that lost its state must not shrink the budget it judges the agents' tasks by)."""
    return max(view.running_tasks(), book.fleet_reported())


def consider(
    view: FleetView, draft: Draft, strangers: Sequence[Stranger], now: float, policy: FleetPolicy
) -> None:
    """Judge the unknown tasks of this event together with those held so far (or hold them all)."""
    book = draft.book
    seen = {*book.held, *(s for alert in book.alerts for s in alert.strangers)}
    fresh: list[Stranger] = []
    for stranger in strangers:
        if stranger in book.killed or stranger in book.condemned:
            # Judged already (the agent reports it again while it stops): kill again, not counted again.
            draft.kill(stranger.host_id, _kill_spec(stranger))
        elif stranger not in seen:
            seen.add(stranger)
            fresh.append(stranger)
    if not picture_complete(book, now, policy):
        if fresh:
            draft.book = replace(book, held=(*book.held, *fresh))
            draft.log(
                "info",
                f"holding {len(fresh)} unknown tasks on {_hosts(fresh)} until this leader has heard from "
                f"{policy.quorum_pct:g}% of the hosts it expects and {policy.settle_s:g}s have passed",
            )
        return
    batch = [*book.held, *fresh]
    if book.held:
        draft.book = replace(book, held=())
    if batch:
        _judge(view, draft, batch, now, policy)


def _judge(view: FleetView, draft: Draft, batch: list[Stranger], now: float, policy: FleetPolicy) -> None:
    book = draft.book
    running = fleet_running(view, book)
    budget = policy.budget(running)
    spent = f"{len(book.killed)} of {budget} killed since this leader took office, {running} tasks running"
    if not book.trusted:
        why = "this leader's state is not trusted (it did not load and verify cleanly)"
    elif book.tripped:
        why = f"the fleet-wide budget was passed earlier and no operator has resolved it yet ({spent})"
    elif len(book.killed) + len(batch) > budget:
        why = f"killing them would pass the fleet-wide budget ({spent})"
        book = replace(book, tripped=True)
    else:
        for stranger in batch:
            draft.kill(stranger.host_id, _kill_spec(stranger))
        draft.book = replace(book, killed=book.killed | set(batch))
        draft.log(
            "warning", f"killing {len(batch)} tasks on {_hosts(batch)} that the master has no record of"
        )
        return
    message = (
        f"{_hosts(batch)} {_run(batch)} {len(batch)} tasks the master has no record of; {why}, "
        "so none were killed: check the master's state, then resolve the alert"
    )
    alert = ReconciliationAlert.of(f"unknown-{book.next_alert}", now, batch, message)
    draft.book = replace(book, alerts=(*book.alerts, alert), next_alert=book.next_alert + 1)
    draft.raised.append(alert)
    draft.log("error", message)


def resolve(view: FleetView, draft: Draft, alert: ReconciliationAlert, kill: bool) -> None:
    """An operator's answer: kill the alert's tasks (on the hosts that are connected) or keep them. Once
    every such alert is answered the budget starts again from zero: the operator has checked the state."""
    book = draft.book
    if kill:
        reachable = [s for s in alert.strangers if s.host_id in view.sessions]
        if not reachable:
            hosts = (
                f"host {alert.host_id} is" if len(alert.hosts) == 1 else f"hosts {', '.join(alert.hosts)} are"
            )
            draft.refused = Refusal(409, "host_unreachable", f"{hosts} not connected: nothing can be killed")
            return
        for stranger in reachable:
            draft.kill(stranger.host_id, _kill_spec(stranger))
        book = replace(book, condemned=book.condemned | set(reachable))
        draft.log(
            "warning",
            f"operator: killing {len(reachable)} unknown tasks on {_hosts(reachable)} (alert {alert.id})",
        )
        gone = [s for s in alert.strangers if s.host_id not in view.sessions]
        if gone:
            draft.log(
                "warning",
                f"operator: {len(gone)} tasks of alert {alert.id} are on {_hosts(gone)}, not connected: they "
                "are judged again when their host registers",
            )
    else:
        book = replace(book, tolerated=book.tolerated | set(alert.unknown_tasks))
        kept = f"{len(alert.unknown_tasks)} unknown tasks on {_hosts(alert.strangers)}"
        draft.log("warning", f"operator: keeping {kept} (alert {alert.id})")
    alerts = tuple(a for a in book.alerts if a.id != alert.id)
    book = replace(book, alerts=alerts)
    if not alerts:
        book = replace(book, tripped=False, killed=frozenset())
    draft.book = book
    draft.resolved.append(alert)


def _kill_spec(stranger: Stranger) -> wire.KillSpec:
    # No job, so no grace period of its own: stopped at once, as before.
    return wire.KillSpec(stranger.task_id, FinishedReason.KILLED, 0.0)


def _hosts(strangers: Sequence[Stranger]) -> str:
    hosts = list(dict.fromkeys(s.host_id for s in strangers))
    if len(hosts) == 1:
        return f"agent {hosts[0]}"
    named = ", ".join(hosts[:5]) + (", ..." if len(hosts) > 5 else "")
    return f"{len(hosts)} agents ({named})"


def _run(strangers: Sequence[Stranger]) -> str:
    return "runs" if len({s.host_id for s in strangers}) == 1 else "run"
