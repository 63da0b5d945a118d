"""Host quarantine: a host whose tasks keep failing for system reasons gets no new work for a while.

``host_quarantine_after`` system errors (a runtime that crashed or failed locally, a transient or unknown
system error — not ``lost`` or ``stuck_in_state``, which the heartbeat and timeout rules already handle)
within ``host_quarantine_window_s`` quarantine the host for ``host_quarantine_s``; the quarantine lifts by
itself, or earlier when an operator lifts it. What runs there keeps running.

A fleet-wide fault (a registry outage fails pulls everywhere) is not a host's fault: at most
``host_quarantine_max_pct`` of the hosts (at least one) are quarantined at once.

The bookkeeping lives in the leader's memory only: after a failover the counts start again and hosts
come back unquarantined (their agents re-register with the new leader).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace

from corral.control.config import MasterConfig
from corral.control.ledger import Ledger
from corral.domain.errors import NotFoundError
from corral.domain.host import Host
from corral.domain.states import FinishedReason
from corral.domain.task import Task

log = logging.getLogger(__name__)

HOST_FAULTS = frozenset(
    {
        FinishedReason.CRASHED,
        FinishedReason.LOCAL_SYSTEM_ERROR,
        FinishedReason.TRANSIENT_SYSTEM_ERROR,
        FinishedReason.UNKNOWN_SYSTEM_ERROR,
    }
)


class HostQuarantine:
    def __init__(self, ledger: Ledger, config: MasterConfig) -> None:
        self.ledger = ledger
        self.state = ledger.state
        self.config = config
        self._errors: dict[str, deque[float]] = {}  # host -> when its recent system errors happened
        self.quarantines = 0  # since this leader took office
        self._capped_warned = False

    def task_ended(self, task: Task, now: float) -> None:
        """Count a task that an agent reported finished; quarantine its host if it crossed the line."""
        after = self.config.host_quarantine_after
        if after <= 0 or task.host_id is None or task.reason not in HOST_FAULTS:
            return
        host = self.state.hosts.get(task.host_id)
        if host is None or host.quarantined:
            return
        window = self.config.host_quarantine_window_s
        errors = self._errors.setdefault(host.id, deque())
        errors.append(now)
        while errors and errors[0] < now - window:
            errors.popleft()
        if len(errors) < after:
            return
        if self._at_limit():
            if not self._capped_warned:
                log.warning(
                    "host %s has %d system errors in %gs, but %d hosts are already quarantined: "
                    "a fleet-wide fault is not a host's fault, so it stays in service",
                    host.id,
                    len(errors),
                    window,
                    self.quarantined_count(),
                )
                self._capped_warned = True
            return
        detail = f"{len(errors)} system errors in {_duration(window)} (last: {task.reason})"
        self._errors.pop(host.id, None)
        self.quarantines += 1
        self.ledger.metrics.quarantines.inc()
        until = now + self.config.host_quarantine_s
        self.ledger.set_host(replace(host, quarantined_until=until, quarantine_detail=detail))
        log.warning("host %s quarantined for %gs: %s", host.id, self.config.host_quarantine_s, detail)

    def expire(self, now: float) -> None:
        """Lift every quarantine whose time is up."""
        for host in list(self.state.hosts.values()):
            if host.quarantined_until is not None and host.quarantined_until <= now:
                log.info("host %s: quarantine over", host.id)
                self._lift(host)

    def lift(self, host_id: str) -> Host:
        """An operator's early release."""
        host = self.state.hosts.get(host_id)
        if host is None:
            raise NotFoundError("host", host_id)
        if host.quarantined:
            log.warning("operator: host %s released from quarantine", host_id)
            host = self._lift(host)
        return host

    def quarantined_count(self) -> int:
        return sum(1 for h in self.state.hosts.values() if h.quarantined)

    def _at_limit(self) -> bool:
        limit = max(1, int(len(self.state.hosts) * self.config.host_quarantine_max_pct / 100))
        return self.quarantined_count() >= limit

    def _lift(self, host: Host) -> Host:
        self._errors.pop(host.id, None)
        self._capped_warned = False
        lifted = replace(host, quarantined_until=None, quarantine_detail="")
        self.ledger.set_host(lifted)
        return lifted


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g}s"
