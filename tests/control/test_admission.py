"""Admission: token buckets, owner addresses, team quotas and the global pending cap."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corral.control.admission import Admission, RateLimiter
from corral.control.auth import Authority
from corral.control.config import MasterConfig
from corral.control.fenced import FencedStore
from corral.control.state import ClusterState
from corral.domain.auth import Principal, Role, Team
from corral.domain.errors import Forbidden, Throttled
from corral.domain.job import Capacity, Owner
from corral.domain.states import JobState
from corral.store import SqlStore
from tests.store.factories import make_job, make_task


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


ALICE = Principal("tok-a", "alice", "payments", Role.USER)
ROOT = Principal("tok-r", "root", "admins", Role.ADMIN)


def test_a_token_bucket_allows_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert [limiter.take("a", 2.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a", 2.0, 3) == pytest.approx(0.5)
    assert limiter.take("b", 2.0, 3) == 0.0  # buckets are per principal
    clock.now += 0.5
    assert limiter.take("a", 2.0, 3) == 0.0
    assert limiter.take("a", 2.0, 3) > 0
    clock.now += 100
    assert [limiter.take("a", 2.0, 3) for _ in range(4)].count(0.0) == 3  # refills up to the burst only


def admission(store: SqlStore, config: MasterConfig, teams: list[Team]) -> tuple[Admission, ClusterState]:
    state = ClusterState()
    clock = Clock()
    return Admission(state, Authority(FencedStore(store, 0), clock, teams, []), config, clock), state


def test_submissions_past_the_rate_are_refused_with_retry_after(store: SqlStore) -> None:
    adm, _ = admission(store, MasterConfig(submit_rate_per_s=1.0, submit_burst=2), [Team("payments")])
    job = make_job("j").descriptor
    adm.submission(ALICE, job)
    adm.submission(ALICE, job)
    with pytest.raises(Throttled) as e:
        adm.submission(ALICE, job)
    assert e.value.status == 429 and e.value.code == "rate_limited"
    assert e.value.headers() == {"Retry-After": "1"}
    for _ in range(10):
        adm.submission(ROOT, job)  # admins are not rate limited unless configured


def test_owner_must_be_an_address_of_the_team(store: SqlStore) -> None:
    adm, _ = admission(store, MasterConfig(), [Team("payments", emails=("@payments.example.com",))])
    job = make_job("j").descriptor
    with pytest.raises(Forbidden) as e:
        adm.submission(ALICE, job)
    assert e.value.code == "owner_not_in_team" and e.value.field == "owner.team_email"
    adm.submission(ALICE, replace(job, owner=Owner("oncall@payments.example.com")))
    adm.submission(ROOT, job)


def test_team_quotas_count_active_jobs_and_their_tasks(store: SqlStore) -> None:
    adm, state = admission(store, MasterConfig(), [Team("payments", max_active_jobs=2, max_active_tasks=7)])
    state.put_job(replace(make_job("a", service=True), team="payments"))  # desired 2
    state.put_job(replace(make_job("done", state=JobState.FINISHED), team="payments"))
    state.put_job(replace(make_job("other"), team="search"))
    two = make_job("x").descriptor  # a batch of 2
    adm.submission(ALICE, two)
    state.put_job(replace(make_job("b"), team="payments"))
    with pytest.raises(Forbidden, match="2 active jobs") as e:
        adm.submission(ALICE, two)
    assert e.value.code == "quota_exceeded"
    service = state.jobs["a"]
    with pytest.raises(Forbidden, match="8 active tasks"):
        adm.resize(ALICE, service, Capacity(0, 6, 10))  # 2 + 2 now, 4 more
    adm.resize(ALICE, service, Capacity(0, 5, 10))
    adm.resize(ALICE, service, Capacity(0, 0, 10))  # shrinking is always allowed


def test_the_pending_cap_refuses_new_work_and_counts_what_waits(store: SqlStore) -> None:
    adm, state = admission(store, MasterConfig(max_pending_tasks=4), [])
    state.put_job(make_job("a", service=True))
    state.put_task(make_task("t0", "a"))
    state.put_task(make_task("t1", "a", index=1))
    adm.submission(ROOT, make_job("x").descriptor)  # 2 waiting + 2 fits
    state.put_task(make_task("t2", "a", index=2))
    with pytest.raises(Throttled) as e:
        adm.submission(ROOT, make_job("y").descriptor)  # 3 + 2 does not
    assert e.value.status == 429 and e.value.code == "queue_full"
    assert e.value.headers() == {"Retry-After": "30"}
    with pytest.raises(Throttled):
        adm.resize(ROOT, state.jobs["a"], Capacity(0, 4, 4))  # growing by 2 does not either
    adm.resize(ROOT, state.jobs["a"], Capacity(0, 3, 4))
