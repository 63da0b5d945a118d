"""Two reasons a task waits that come from outside the scheduler: its job's crash-loop backoff (carried on
the pending task) and quarantined hosts (a cluster column, with its own filter and explanation)."""

from __future__ import annotations

from dataclasses import replace

from corral.scheduler import PendingReason
from corral.scheduler.cluster import HostSpec
from corral.scheduler.schedule import clock_time
from tests.scheduler.builders import NOW, cluster_of, host, job, pending, placed, run, snapshot, tasks_of

R = PendingReason


def quarantined(host_id: str) -> HostSpec:
    """A host only its quarantine keeps from taking tasks."""
    return replace(host(host_id, schedulable=False), quarantined=True)


def test_a_task_waiting_out_its_jobs_crash_loop_backoff_says_so() -> None:
    j = job("j")
    waiting = [replace(t, backoff_s=40.0, job_failures=5) for t in tasks_of(j, 1, ready_at=NOW + 32.0)]
    plan = run(snapshot(cluster_of([host("h0")]), [j], tasks=waiting))
    p = pending(plan)["j-0"]
    assert p.reason is R.CRASH_LOOP
    assert p.message == (
        f"job crash-looping: 5 failures in a row; next attempt not before {clock_time(NOW + 32.0)} "
        "(backoff 40s, 32.0s from now)"
    )
    # Once the backoff is over, it is placed like any other task.
    assert placed(run(replace(snapshot(cluster_of([host("h0")]), [j], tasks=waiting), now=NOW + 32.0))) == {
        "j-0": "h0"
    }


def test_clock_time_is_the_utc_time_of_day() -> None:
    assert clock_time(0.0) == "00:00:00 UTC"
    assert clock_time(86400.0 * 365 + 3600 * 13 + 60 * 7 + 9.9) == "13:07:09 UTC"


def test_a_quarantined_host_takes_no_task() -> None:
    cluster = cluster_of([quarantined("h0"), host("h1")])
    assert placed(run(snapshot(cluster, [job("j", size=1)]))) == {"j-0": "h1"}


def test_when_only_quarantined_hosts_are_left_the_quarantine_is_the_reason() -> None:
    cluster = cluster_of(
        [
            quarantined("h0"),
            host("h1", schedulable=False),
            host("h2", cpu=1.0),
        ]
    )
    p = pending(run(snapshot(cluster, [job("j", cpu=2.0)])))["j-0"]
    assert p.reason is R.NO_CAPACITY  # h2 is in reach but too small: that is the last filter to bite
    assert p.rejections == {"host_unavailable": 1, "host_quarantined": 1, "resources:cpu": 1}
    p = pending(run(snapshot(cluster_of([quarantined("h0")]), [job("j")])))["j-0"]
    assert p.reason is R.QUARANTINED
    assert p.message == "host quarantined: 1 host is quarantined after repeated system errors"
    assert p.rejections == {"host_quarantined": 1}


def test_a_host_that_is_down_and_quarantined_is_charged_to_being_down() -> None:
    # ClusterState marks a host quarantined for the scheduler only when nothing else keeps it out.
    cluster = cluster_of([host("h0", schedulable=False)])
    p = pending(run(snapshot(cluster, [job("j")])))["j-0"]
    assert p.rejections == {"host_unavailable": 1}


def test_a_task_pinned_to_a_quarantined_host_is_told_so() -> None:
    cluster = cluster_of([quarantined("h0"), host("h1"), host("h2")])
    p = pending(run(snapshot(cluster, [job("j", hard={"host": "h0"})])))["j-0"]
    assert p.reason is R.QUARANTINED
    assert p.message.startswith("host quarantined: 1 host is quarantined after repeated system errors")
    assert p.rejections == {"constraint:host": 2, "host_quarantined": 1}
