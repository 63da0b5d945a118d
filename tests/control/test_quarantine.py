"""Host quarantine: system errors counted per host in a window, the quarantine it triggers, its end (by
time or by an operator), the cap on how much of the fleet it may take, and how the rest of the
control plane sees a quarantined host."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.control.bus import EventBus
from corral.control.config import MasterConfig
from corral.control.fenced import FencedStore
from corral.control.ledger import Ledger
from corral.control.overview import health_of
from corral.control.quarantine import HostQuarantine
from corral.control.state import ClusterState
from corral.control.writer import StoreWriter
from corral.domain.errors import NotFoundError
from corral.domain.host import Host
from corral.domain.resources import Resources
from corral.domain.states import FinishedReason, TaskState
from corral.domain.task import Task
from corral.store import SqlStore

R = FinishedReason
HOST = Resources(8.0, 8192, 10_000, 1000, 0)
CONFIG = MasterConfig(host_quarantine_after=3, host_quarantine_window_s=60.0, host_quarantine_s=300.0)


def setup(store: SqlStore, hosts: int = 5, config: MasterConfig = CONFIG) -> HostQuarantine:
    ledger = Ledger(ClusterState(), StoreWriter(FencedStore(store, 0)), EventBus())
    for i in range(hosts):
        ledger.set_host(Host(f"h{i}", HOST))
    return HostQuarantine(ledger, config)


def ended(host: str, reason: FinishedReason, n: int = 0) -> Task:
    return Task(f"t{n}", "j", None, TaskState.FINISHED, host_id=host, reason=reason, finished_at=1.0)


def test_repeated_system_errors_within_the_window_quarantine_the_host(store: SqlStore) -> None:
    q = setup(store)
    for n, at in enumerate((100.0, 110.0)):
        q.task_ended(ended("h0", R.LOCAL_SYSTEM_ERROR, n), at)
    assert not q.state.hosts["h0"].quarantined
    q.task_ended(ended("h0", R.CRASHED, 3), 120.0)
    host = q.state.hosts["h0"]
    assert host.quarantined_until == 420.0
    assert host.quarantine_detail == "3 system errors in 1 min (last: crashed)"
    assert not host.schedulable
    h = q.state.cluster.index["h0"]
    assert not q.state.cluster.schedulable[h] and q.state.cluster.quarantined[h]
    assert health_of(host) == "quarantined"
    assert q.quarantines == 1


def test_errors_spread_wider_than_the_window_do_not(store: SqlStore) -> None:
    q = setup(store)
    for n, at in enumerate((0.0, 50.0, 100.0, 150.0)):
        q.task_ended(ended("h0", R.TRANSIENT_SYSTEM_ERROR, n), at)
    assert not q.state.hosts["h0"].quarantined


@pytest.mark.parametrize("reason", [R.FAILED, R.LOST, R.STUCK_IN_STATE, R.KILLED, R.NORMAL])
def test_user_failures_lost_hosts_and_timeouts_do_not_count(store: SqlStore, reason: FinishedReason) -> None:
    q = setup(store)
    for n in range(5):
        q.task_ended(ended("h0", reason, n), 100.0 + n)
    assert not q.state.hosts["h0"].quarantined


def test_the_quarantine_lifts_by_itself_and_counting_starts_afresh(store: SqlStore) -> None:
    q = setup(store)
    for n in range(3):
        q.task_ended(ended("h0", R.LOCAL_SYSTEM_ERROR, n), 100.0)
    q.expire(399.0)
    assert q.state.hosts["h0"].quarantined
    q.expire(400.0)
    host = q.state.hosts["h0"]
    assert not host.quarantined and host.schedulable and host.quarantine_detail == ""
    assert q.state.cluster.schedulable[q.state.cluster.index["h0"]]
    q.task_ended(ended("h0", R.LOCAL_SYSTEM_ERROR, 9), 401.0)
    assert not q.state.hosts["h0"].quarantined  # the errors before the quarantine are forgotten


def test_an_operator_lifts_it_early(store: SqlStore) -> None:
    q = setup(store)
    for n in range(3):
        q.task_ended(ended("h1", R.LOCAL_SYSTEM_ERROR, n), 100.0)
    assert not q.lift("h1").quarantined
    assert q.state.hosts["h1"].schedulable
    assert not q.lift("h2").quarantined  # not quarantined: nothing to do
    with pytest.raises(NotFoundError):
        q.lift("nope")


def test_no_more_than_a_share_of_the_fleet_is_quarantined(store: SqlStore) -> None:
    q = setup(store, hosts=5)  # 20 % of 5: one host at a time
    for host in ("h0", "h1"):
        for n in range(3):
            q.task_ended(ended(host, R.LOCAL_SYSTEM_ERROR, n), 100.0)
    assert [h.id for h in q.state.hosts.values() if h.quarantined] == ["h0"]


def test_switched_off(store: SqlStore) -> None:
    q = setup(store, config=replace(CONFIG, host_quarantine_after=0))
    for n in range(10):
        q.task_ended(ended("h0", R.LOCAL_SYSTEM_ERROR, n), 100.0)
    assert not q.state.hosts["h0"].quarantined


def test_the_scheduler_charges_a_host_to_its_quarantine_only_if_nothing_else_keeps_it_out() -> None:
    state = ClusterState()
    state.put_host(Host("q", HOST, quarantined_until=500.0))
    state.put_host(Host("qd", HOST, quarantined_until=500.0, draining=True))
    cluster = state.cluster
    assert [bool(cluster.quarantined[cluster.index[h]]) for h in ("q", "qd")] == [True, False]
    assert not cluster.schedulable[cluster.index["q"]] and not cluster.schedulable[cluster.index["qd"]]
