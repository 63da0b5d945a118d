"""The autoscaler's rule: per host group, how many hosts to ask for, which hosts to remove, which to
terminate, and for every host kept, why. Pure: the shell gathers a ``GroupInput`` per group and applies the
``GroupDecision`` it gets back (``model.py``).

Scale up (never destructive): the exact shortfall (``trial.py``) plus idle hosts missing below
``min_idle``, less hosts already on their way; removals in progress are cancelled first (a drained host
comes back faster than a new one boots); then the provider is asked for the new size at once, within
``max_size``, after ``scale_up_cooldown_s`` and any backoff. ``min_size`` is restored without cooldown.

Scale down (destructive, so bounded): only when the leader trusts its picture, nothing is wanted, and
``scale_down_cooldown_s`` has passed since the group last scaled either way. Idle hosts above what the group
keeps idle go first; then hosts whose tasks all fit elsewhere (``consolidation``, decided by the real
scheduler on a trial). Never below ``min_size`` or ``min_idle``; at most ``step`` hosts start draining per
decision. A removed host is drained make-before-break; it is terminated only once it holds no task.

Bad hosts: quarantined, unhealthy or unreachable longer than ``replace_after_s`` are replaced — a new host
asked first, then the bad one drained and terminated — at most ``replace_max_percent`` of the group at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from corral.autoscale.model import (
    GroupDecision,
    GroupRecord,
    HostCondition,
    HostView,
    Kept,
    Removal,
    RemovalKind,
)
from corral.domain.hostgroup import HostGroup

KEEP_TERMINATED = 200  # terminated host ids remembered per group (a late report never revives one)
STEP_PERCENT = 25.0  # at most this share of a group starts draining for a scale-down per decision
NOT_SCALABLE = Kept("not_scalable", "the group has no provider, or autoscaling is off")
NOT_TRIED = Kept("not_tried", "its tasks were not tried elsewhere this round")


@dataclass(frozen=True, slots=True)
class GroupInput:
    group: HostGroup
    record: GroupRecord
    hosts: Sequence[HostView]  # the hosts registered as this group's (every condition)
    coming: int = 0  # instances the provider is starting that have not registered yet
    gone: frozenset[str] = frozenset()  # instance ids the provider says are terminated or absent
    instances: int | None = None  # instances the provider lists (starting or running); None: unknown
    retry_terminate: frozenset[str] = frozenset()  # asked to terminate, still running well after: ask again
    wanted: int = 0  # new hosts the shortfall asks of this group
    unfixable: int = 0  # pending tasks no new host of any group can hold (shown, never acted on)
    # Scale-down candidates with tasks: host -> None (all its tasks fit elsewhere) or why it is kept.
    consolidation: Mapping[str, Kept | None] = field(default_factory=dict)
    blocked: Mapping[str, Kept] = field(default_factory=dict)  # hosts whose tasks may not move now


@dataclass(frozen=True, slots=True)
class Context:
    now: float
    trusted: bool  # the leader's picture of the fleet is complete: destructive steps allowed
    pending: int = 0  # tasks waiting long enough to count (fleet-wide)
    young: int = 0  # tasks waiting for a reason more hosts could fix, not yet long enough to count


def idle_to_keep(hosts: Sequence[HostView], group: HostGroup) -> list[str]:
    """The idle hosts the group keeps for a burst (``min_idle``): the longest-registered first."""
    idle = sorted((h for h in hosts if h.idle), key=lambda h: (h.registered_at, h.host_id))
    return [h.host_id for h in idle[: group.min_idle]]


def scale_down_room(inp: GroupInput) -> int:
    """How many more of the group's hosts may start draining for a scale-down now."""
    g = inp.group
    live = [h for h in inp.hosts if h.condition is not HostCondition.GONE]
    removing = sum(1 for h in live if h.host_id in inp.record.removing)
    size = len(live) + inp.coming
    step = max(1, math.floor(len(live) * STEP_PERCENT / 100))
    return max(0, min(size - removing - g.min_size, step))


def decide(inp: GroupInput, ctx: Context) -> GroupDecision:
    g, now = inp.group, ctx.now
    record = inp.record
    notes: list[str] = []
    live = [h for h in inp.hosts if h.condition is not HostCondition.GONE and h.host_id not in inp.gone]
    by_id = {h.host_id: h for h in live}

    # Terminations asked earlier that the provider has carried out; removals whose host is gone.
    terminated = [h for h in record.terminating if h in inp.gone or h not in by_id]
    terminating = tuple(h for h in record.terminating if h not in terminated)
    removing = {h: r for h, r in record.removing.items() if h in by_id and h not in terminating}
    record = replace(
        record,
        terminating=terminating,
        terminated=(*record.terminated, *terminated)[-KEEP_TERMINATED:],
        removing=removing,
    )
    size = len(live) - len(terminating) + inp.coming
    if inp.instances is not None:
        desired = inp.instances
    else:
        desired = record.desired if record.desired is not None else size
    if not g.scalable:
        off = {h.host_id: NOT_SCALABLE for h in live}
        return GroupDecision(g.name, replace(record, desired=None), kept=off)
    backing_off = record.retry_at is not None and now < record.retry_at
    if backing_off:
        notes.append(f"provider calls back off until {record.retry_at:.0f} after: {record.last_error}")

    # Bad hosts: replace (make before break), within the group's replacement budget.
    replacing = sum(1 for r in removing.values() if r.kind is RemovalKind.REPLACE)
    budget = g.replace_budget(max(size, 1))
    new_removals: dict[str, Removal] = {}
    replacements = 0
    for h in sorted(live, key=lambda h: (h.bad_since or 0.0, h.host_id)):
        if h.bad_since is None or h.host_id in removing or now - h.bad_since < g.replace_after_s:
            continue
        if not ctx.trusted:
            notes.append(f"{h.host_id} is bad ({h.bad_detail}) but the leader's picture is incomplete")
            continue
        if replacing + replacements >= budget:
            notes.append(f"{h.host_id} waits to be replaced: {budget} host(s) of the group at a time")
            continue
        reason = f"replacing: {h.bad_detail or 'bad'} for {now - h.bad_since:.0f}s"
        new_removals[h.host_id] = Removal(RemovalKind.REPLACE, now, reason)
        replacements += 1

    # Scale up: the shortfall, idle hosts missing below min_idle, min_size.
    idle = [h for h in live if h.idle and h.host_id not in removing]
    idle_missing = max(0, g.min_idle - len(idle) - inp.coming)
    if idle_missing and ctx.young and not inp.wanted:
        # A burst is arriving: its shortfall is asked for in one decision, the idle hosts with it.
        notes.append(f"{ctx.young} task(s) pending: keeping {g.min_idle} idle waits for their shortfall")
        idle_missing = 0
    want = inp.wanted + idle_missing
    cancel: list[str] = []
    if want > 0:
        for host_id, r in sorted(removing.items(), key=lambda item: item[1].since):
            if want <= 0:
                break
            if r.kind is RemovalKind.SCALE_DOWN and host_id not in terminating:
                cancel.append(host_id)
                want -= 1
        removing = {h: r for h, r in removing.items() if h not in cancel}
    # Terminate what is drained and empty (never with a task on record; only on a trusted picture).
    terminate: list[str] = []
    waiting: dict[str, str] = {}
    for host_id, r in removing.items():
        h = by_id[host_id]
        if not ctx.trusted:
            waiting[host_id] = "the leader's picture of the fleet is incomplete: nothing is terminated"
        elif not h.draining:
            waiting[host_id] = "its drain is being started"
        elif h.tasks > 0:
            waiting[host_id] = f"draining: {h.tasks} task(s) still on it ({r.reason})"
        elif backing_off:
            waiting[host_id] = "empty; the provider call backs off"
        else:
            terminate.append(host_id)

    # The size to ask for: terminations lower the provider's size by one each (decrement); only a reason
    # (pending tasks, min idle, a replacement, min size) raises it, and nothing here ever lowers it.
    after_terminate = max(0, desired - len(terminate))
    target = after_terminate
    scale_reason = ""
    if want > 0 or replacements:
        cooling = record.last_up_at is not None and now - record.last_up_at < g.scale_up_cooldown_s
        if cooling and not replacements:
            notes.append(f"scale-up cooling down ({g.scale_up_cooldown_s:g}s since the last)")
        else:
            asked = want + replacements
            target = min(g.upper, after_terminate + asked)
            if target < after_terminate + asked:
                notes.append(f"at max size {g.max_size}: {after_terminate + asked - target} host(s) short")
            parts = []
            if inp.wanted:
                parts.append(f"{inp.wanted} for pending tasks (trial placement)")
            if idle_missing:
                parts.append(f"{idle_missing} to keep {g.min_idle} idle")
            if replacements:
                parts.append(f"{replacements} to replace bad hosts")
            scale_reason = "; ".join(parts)
    if target < g.min_size:
        target = g.min_size
        scale_reason = scale_reason or f"min size {g.min_size}"

    # Scale down: idle hosts above what the group keeps, then consolidation; bounded, trusted, cooled.
    kept: dict[str, Kept] = {}
    if want <= 0 and not cancel and not inp.wanted:
        new_removals.update(_scale_down(inp, ctx, live, removing, size, kept, notes))
    else:
        for h in live:
            if h.host_id not in removing:
                kept[h.host_id] = Kept("demand", "tasks are waiting for room: the group is growing")
    again = tuple(h for h in terminating if h in inp.retry_terminate and not backing_off and ctx.trusted)
    removing = {**removing, **new_removals}
    scale_to = target if target > after_terminate and not backing_off else None
    grew = scale_to is not None
    new_record = replace(
        record,
        desired=scale_to if scale_to is not None else after_terminate,
        removing=removing,
        terminating=(*terminating, *terminate),
        last_up_at=now if grew else record.last_up_at,
        last_down_at=now
        if any(r.kind is RemovalKind.SCALE_DOWN for r in new_removals.values())
        else record.last_down_at,
    )
    for host_id in removing:
        kept.pop(host_id, None)
    return GroupDecision(
        g.name,
        new_record,
        scale_to,
        scale_reason,
        new_removals,
        tuple(cancel),
        (*terminate, *again),
        kept,
        waiting,
        tuple(notes),
    )


def _scale_down(
    inp: GroupInput,
    ctx: Context,
    live: Sequence[HostView],
    removing: Mapping[str, Removal],
    size: int,
    kept: dict[str, Kept],
    notes: list[str],
) -> dict[str, Removal]:
    g, now, record = inp.group, ctx.now, inp.record
    out: dict[str, Removal] = {}
    candidates = [h for h in live if h.host_id not in removing and h.condition is HostCondition.READY]
    keep_idle = set(idle_to_keep(live, g))
    since = max(record.last_up_at or -math.inf, record.last_down_at or -math.inf)
    cooling = now - since < g.scale_down_cooldown_s
    room = scale_down_room(inp)
    floor_idle = max(g.min_idle, g.max_idle)
    idle_count = sum(1 for h in candidates if h.idle)
    for h in sorted(candidates, key=lambda h: (h.tasks, -h.registered_at, h.host_id)):
        if not g.scalable:
            kept[h.host_id] = NOT_SCALABLE
        elif not ctx.trusted:
            kept[h.host_id] = Kept("unsure", "the leader's picture of the fleet is incomplete")
        elif h.host_id in keep_idle:
            kept[h.host_id] = Kept("min_idle", f"one of the {g.min_idle} idle hosts the group keeps")
        elif not h.schedulable and not h.idle and h.draining:
            kept[h.host_id] = Kept("drained", "drained by an operator or a group drain, not for removal")
        elif h.idle and idle_count <= floor_idle:
            kept[h.host_id] = Kept("max_idle", f"the group keeps up to {g.max_idle} idle hosts")
        elif h.tasks and h.host_id in inp.blocked:
            kept[h.host_id] = inp.blocked[h.host_id]
        elif h.tasks and (why := inp.consolidation.get(h.host_id, NOT_TRIED)) is not None:
            kept[h.host_id] = why
        elif h.unneeded_since is None or now - h.unneeded_since < g.unneeded_for_s:
            for_s = 0.0 if h.unneeded_since is None else now - h.unneeded_since
            kept[h.host_id] = Kept(
                "unneeded_for", f"unneeded for {for_s:.0f}s of the {g.unneeded_for_s:g}s before removal"
            )
        elif cooling:
            kept[h.host_id] = Kept(
                "cooldown", f"scale-down cooldown: {g.scale_down_cooldown_s - (now - since):.0f}s left"
            )
        elif size - len(out) - len(removing) <= g.min_size or room <= len(out):
            limit = "min size" if size - len(out) - len(removing) <= g.min_size else "step"
            detail = (
                f"the group is at its min size {g.min_size}"
                if limit == "min size"
                else "at most a quarter of the group drains per step"
            )
            kept[h.host_id] = Kept(limit.replace(" ", "_"), detail)
        else:
            reason = "idle" if h.idle else f"its {h.tasks} task(s) fit on other hosts"
            out[h.host_id] = Removal(RemovalKind.SCALE_DOWN, now, reason)
            if h.idle:
                idle_count -= 1
    if out:
        notes.append(f"scaling down: {len(out)} host(s) drain for removal")
    return out
