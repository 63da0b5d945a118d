"""Host groups as the API, the CLI and the console show them: the configuration, the hosts by condition,
and the autoscaler's last decision — per host why it is kept ("why not scaled down"), what a host being
removed waits for, what the group waits for (cooldown, backoff, max size) and the recent actions."""

from __future__ import annotations

from typing import Any

from corral.autoscale.model import GroupDecision, GroupRecord
from corral.control.autoscaler import Autoscaler
from corral.control.state import ClusterState
from corral.domain.codec import to_builtins
from corral.domain.hostgroup import HostGroup
from corral.domain.states import HostState

View = dict[str, Any]


def group_view(state: ClusterState, autoscaler: Autoscaler | None, group: HostGroup) -> View:
    record = autoscaler.groups.records.get(group.name, GroupRecord()) if autoscaler else GroupRecord()
    gone = set(record.terminated)
    hosts = [h for h in state.hosts.values() if h.attributes.host_group == group.name and h.id not in gone]
    ready = [h for h in hosts if h.state is HostState.READY]
    idle = [h for h in ready if h.schedulable and not state.tasks_on_host(h.id)]
    decision = autoscaler.decisions.get(group.name) if autoscaler else None
    return {
        **to_builtins(group),
        "scalable": group.scalable,
        "status": {
            "hosts": len(ready),
            "unreachable": len(hosts) - len(ready),
            "idle": len(idle),
            "desired": record.desired,
            "removing": len(record.removing),
            "terminating": len(record.terminating),
            "last_scale_up_at": record.last_up_at,
            "last_scale_down_at": record.last_down_at,
            "provider_error": record.last_error,
            "notes": list(decision.notes) if decision else [],
        },
    }


def explain_view(state: ClusterState, autoscaler: Autoscaler | None, group: HostGroup) -> View:
    """Per host, why it is kept or what its removal waits for; the group's notes; the recent actions."""
    decision: GroupDecision | None = autoscaler.decisions.get(group.name) if autoscaler else None
    record = autoscaler.groups.records.get(group.name, GroupRecord()) if autoscaler else GroupRecord()
    hosts = []
    for host in sorted(state.hosts.values(), key=lambda h: h.id):
        if host.attributes.host_group != group.name:
            continue
        tasks = sum(1 for t in state.tasks_on_host(host.id) if t.on_host)
        entry: View = {"host_id": host.id, "state": host.state.value, "tasks": tasks}
        removal = record.removing.get(host.id)
        if host.id in record.terminated:
            entry.update(verdict="terminated", detail="terminated by the autoscaler")
        elif host.id in record.terminating:
            entry.update(verdict="terminating", detail="asked of the provider")
        elif removal is not None:
            waits = decision.waiting.get(host.id, "") if decision else ""
            entry.update(
                verdict="removing", kind=removal.kind.value, detail=removal.reason, waiting_for=waits
            )
        elif decision is not None and host.id in decision.kept:
            kept = decision.kept[host.id]
            entry.update(verdict="kept", kind=kept.kind, detail=kept.detail)
        else:
            entry.update(verdict="kept", kind="not_decided", detail="no autoscaler round has weighed it yet")
        hosts.append(entry)
    out: View = {
        "group": group.name,
        "scalable": group.scalable,
        "trusted": autoscaler.trusted if autoscaler else True,
        "hosts": hosts,
        "notes": list(decision.notes) if decision else [],
        "scale_to": decision.scale_to if decision else None,
        "scale_reason": decision.scale_reason if decision else "",
        "desired": record.desired,
        "terminating": list(record.terminating),
        "terminated": list(record.terminated[-50:]),  # the latest, oldest first
        "provider_error": record.last_error,
        "retry_at": record.retry_at,
    }
    if autoscaler is not None:
        stats = autoscaler.stats
        out["shortfall"] = {
            "pending_tasks": stats.last_pending,
            "wanted": stats.last_wanted,
            "unfixable_sample": stats.unfixable,
            "trial_ms": round(stats.shortfall_ms, 2),
            "consolidation_ms": round(stats.consolidation_ms, 2),
        }
        out["recent"] = [
            {"at": a.at, "action": a.action, "detail": a.detail}
            for a in autoscaler.history
            if a.group == group.name
        ][-30:]
    return out


def status_view(autoscaler: Autoscaler | None) -> View:
    if autoscaler is None:
        return {"enabled": False}
    s = autoscaler.stats
    return {
        "enabled": True,
        "trusted": autoscaler.trusted,
        "rounds": s.rounds,
        "last_round_ms": round(s.last_ms, 2),
        "trial_ms_max": round(s.shortfall_ms_max, 2),
        "pending_tasks": s.last_pending,
        "wanted": s.last_wanted,
        "groups": {
            name: {
                "desired": d.record.desired,
                "removing": len(d.record.removing),
                "terminating": len(d.record.terminating),
                "notes": list(d.notes),
            }
            for name, d in autoscaler.decisions.items()
        },
    }
