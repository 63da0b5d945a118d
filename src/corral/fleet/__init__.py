"""The agent protocol as a state machine: ``handle(view, event, now, policy) -> Decision``.

It decides what the master does when an agent registers, reports status, falls silent or disconnects,
and when an operator answers an alert: which task stimuli to apply, which launches to send again after
commit, which tasks to kill or forget on which host, which sessions to close, which hosts are
unreachable, which registrations to refuse (host identity), and — the rule that can take production down
— which tasks the leader has no record of may be killed (a fleet-wide budget, the whole picture first).

Pure: no I/O, no clock, no sessions. The shell (control/agents.py) feeds it events with a view of the
leader's state, applies the Decision (ledger, channels, outbox) and keeps the returned FleetBook.
"""

from corral.fleet.book import Alert, FleetBook, ImpostorAlert, ReconciliationAlert, Stranger
from corral.fleet.decision import (
    Decision,
    ForgetOrder,
    KillOrder,
    LogLine,
    Refusal,
    SessionClose,
    Stimulus,
    Unreachable,
)
from corral.fleet.events import (
    Credential,
    Disconnected,
    FleetEvent,
    Registered,
    ResolveAlert,
    StatusReported,
    Tick,
)
from corral.fleet.policy import FleetPolicy
from corral.fleet.protocol import handle, next_deadline
from corral.fleet.view import FleetView, SessionInfo

__all__ = [
    "Alert",
    "Credential",
    "Decision",
    "Disconnected",
    "FleetBook",
    "FleetEvent",
    "FleetPolicy",
    "FleetView",
    "ForgetOrder",
    "ImpostorAlert",
    "KillOrder",
    "LogLine",
    "ReconciliationAlert",
    "Refusal",
    "Registered",
    "ResolveAlert",
    "SessionClose",
    "SessionInfo",
    "StatusReported",
    "Stimulus",
    "Stranger",
    "Tick",
    "Unreachable",
    "handle",
    "next_deadline",
]
