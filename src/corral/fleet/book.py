"""The agent protocol's own bookkeeping for one leader's term, and the alerts it raises.

A FleetBook is a value: ``handle`` returns the next one in its Decision and the shell keeps it until the
next call. It remembers what the task records cannot: which hosts this leader still waits for, which
unknown tasks it holds until it sees the whole fleet, how many it killed against the fleet-wide budget,
and the alerts an operator has yet to answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Stranger:
    """A task an agent runs that this leader has no record of."""

    host_id: str
    task_id: str


@dataclass(frozen=True, slots=True)
class ReconciliationAlert:
    """Unknown tasks left running (none of them killed) until an operator kills or keeps them.

    ``host_id`` and ``unknown_tasks`` keep the shape the API has always shown; ``strangers`` says on which
    host each task runs (an alert raised for a whole batch names several hosts)."""

    id: str
    host_id: str  # the first host named (the only one, unless the alert covers a batch)
    at: float
    unknown_tasks: tuple[str, ...]
    message: str
    hosts: tuple[str, ...] = ()
    strangers: tuple[Stranger, ...] = ()

    @classmethod
    def of(cls, alert_id: str, at: float, strangers: Iterable[Stranger], message: str) -> ReconciliationAlert:
        found = tuple(strangers)
        if not found:
            raise ValueError("a reconciliation alert names at least one task")
        hosts = tuple(dict.fromkeys(s.host_id for s in found))
        return cls(alert_id, hosts[0], at, tuple(s.task_id for s in found), message, hosts, found)


@dataclass(frozen=True, slots=True)
class ImpostorAlert:
    """A registration refused because the host it named belongs to another credential."""

    id: str
    host_id: str
    credential_id: str  # the credential the refused agent presented
    at: float
    message: str
    attempts: int = 1  # refused registrations with this credential for this host since the alert
    last_at: float = 0.0


Alert = ReconciliationAlert | ImpostorAlert


@dataclass(frozen=True, slots=True)
class FleetBook:
    took_office_at: float
    trusted: bool = True  # the state was loaded and verified; if not, no unknown task is ever killed
    expected: frozenset[str] = frozenset()  # hosts that held tasks when this leader loaded its state
    reported: frozenset[str] = frozenset()  # expected hosts that have registered since
    awaiting: Mapping[str, float] = field(default_factory=dict)  # host -> when its tasks are lost
    held: tuple[Stranger, ...] = ()  # unknown tasks waiting until the leader sees the whole picture
    reported_running: Mapping[str, int] = field(default_factory=dict)  # host -> live tasks it registered with
    # Unknown tasks killed since this leader took office, or since an operator last resolved every alert:
    killed: frozenset[Stranger] = frozenset()
    tripped: bool = False  # the budget was passed: no unknown task is killed until an operator resolves
    tolerated: frozenset[str] = frozenset()  # unknown tasks an operator chose to keep ...
    condemned: frozenset[Stranger] = frozenset()  # ... or to kill (until they report finished)
    alerts: tuple[ReconciliationAlert, ...] = ()
    impostors: tuple[ImpostorAlert, ...] = ()
    next_alert: int = 1
    # The mappings are never changed in place: every change makes a new book with new mappings.

    @classmethod
    def at_start(
        cls, now: float, trusted: bool, expected_hosts: Iterable[str], lost_after_s: float
    ) -> FleetBook:
        """The book of a leader taking office at ``now``, waiting for the hosts its state places tasks on."""
        expected = frozenset(expected_hosts)
        awaiting = {host: now + lost_after_s for host in sorted(expected)}
        return cls(took_office_at=now, trusted=trusted, expected=expected, awaiting=awaiting)

    @property
    def open_alerts(self) -> tuple[Alert, ...]:
        return (*self.alerts, *self.impostors)

    def alert(self, alert_id: str) -> Alert | None:
        return next((a for a in self.open_alerts if a.id == alert_id), None)

    def fleet_reported(self) -> int:
        """Live tasks the registered agents said they run (the fleet as the agents see it)."""
        return sum(self.reported_running.values())
