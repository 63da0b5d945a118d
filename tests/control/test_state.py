"""ClusterState: the pending set, per-host allocation and ports, and job-group keys stay true to the records."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.control.state import ClusterState
from corral.domain.host import Host
from corral.domain.job import JobGroup
from corral.domain.resources import ZERO, Resources
from corral.domain.states import ON_HOST_STATES, JobState, TaskState
from tests.store.factories import make_job, make_task

SMALL = Resources(1.0, 512, 1024, 128, 0)  # make_job's default container resources
BIG = Resources(2.5, 2048, 1024, 128, 0)


def _state() -> ClusterState:
    state = ClusterState()
    state.put_job(make_job("small"))
    state.put_job(make_job("big", cpu=2.5, memory_mb=2048))
    return state


def test_task_lifecycle_accepted_launched_finished() -> None:
    state = _state()
    accepted = make_task("t1", "small")
    assert state.put_task(accepted) is None
    assert list(state.pending_tasks()) == [accepted]
    assert state.pending_count == 1
    assert state.allocated("h1") == ZERO

    launched = make_task("t1", "small", state=TaskState.LAUNCHED, host_id="h1", ports=(30001, 30002))
    assert state.put_task(launched) == accepted
    assert state.pending_count == 0
    assert state.allocated("h1") == SMALL
    assert state.used_ports("h1") == {30001, 30002}
    assert state.tasks_on_host("h1") == [launched]

    # Moving on through states on the same host holds its resources once, not again per update.
    for s in (TaskState.START_INITIATED, TaskState.STARTED, TaskState.DISCONNECTED, TaskState.KILL_INITIATED):
        state.put_task(replace(launched, state=s))
        assert state.allocated("h1") == SMALL
        assert state.used_ports("h1") == {30001, 30002}

    state.put_task(replace(launched, state=TaskState.FINISHED))
    assert state.allocated("h1") == ZERO
    assert state.used_ports("h1") == frozenset()
    assert state.tasks_on_host("h1") == []
    assert state.pending_count == 0
    assert state.tasks["t1"].is_finished


def test_accepted_task_finished_before_placement_leaves_the_pending_set() -> None:
    state = _state()
    state.put_task(make_task("t1", "small"))
    state.put_task(make_task("t2", "small", index=1))
    state.put_task(make_task("t1", "small", state=TaskState.FINISHED))
    assert [t.id for t in state.pending_tasks()] == ["t2"]
    assert state.allocated("h1") == ZERO


def test_pending_tasks_keep_creation_order() -> None:
    state = _state()
    for i in (3, 1, 2):
        state.put_task(make_task(f"t{i}", "small", index=i))
    state.put_task(make_task("t1", "small", index=1))  # an update does not move it to the back
    assert [t.id for t in state.pending_tasks()] == ["t3", "t1", "t2"]


def test_tasks_on_one_host_add_up_and_release_separately() -> None:
    state = _state()
    host = Host("h1", Resources(8.0, 8192, 10240, 1000, 0))
    state.put_host(host)
    state.put_task(make_task("a", "small", state=TaskState.STARTED, host_id="h1", ports=(30001,)))
    state.put_task(make_task("b", "big", state=TaskState.LAUNCHED, host_id="h1", ports=(30002,)))
    assert state.allocated("h1") == SMALL + BIG
    assert state.free(host) == host.resources - SMALL - BIG
    assert state.used_ports("h1") == {30001, 30002}

    state.put_task(make_task("a", "small", state=TaskState.FINISHED, host_id="h1", ports=(30001,)))
    assert state.allocated("h1") == BIG
    assert state.used_ports("h1") == {30002}
    assert [t.id for t in state.tasks_on_host("h1")] == ["b"]


def test_host_change_moves_the_allocation() -> None:
    state = _state()
    state.put_task(make_task("t1", "big", state=TaskState.LAUNCHED, host_id="h1", ports=(30001,)))
    state.put_task(make_task("t1", "big", state=TaskState.STARTED, host_id="h2", ports=(31000,)))
    assert state.allocated("h1") == ZERO
    assert state.used_ports("h1") == frozenset()
    assert state.tasks_on_host("h1") == []
    assert state.allocated("h2") == BIG
    assert state.used_ports("h2") == {31000}
    assert [t.id for t in state.tasks_on_host("h2")] == ["t1"]


def test_drop_job_removes_its_tasks_and_their_allocation() -> None:
    state = _state()
    state.put_task(make_task("t1", "big", state=TaskState.STARTED, host_id="h1", ports=(30001,)))
    state.put_task(make_task("t2", "big", index=1))
    state.put_task(make_task("t3", "small", state=TaskState.STARTED, host_id="h1"))
    state.drop_job("big")
    assert "big" not in state.jobs
    assert set(state.tasks) == {"t3"}
    assert state.tasks_of("big") == []
    assert state.pending_count == 0
    assert state.allocated("h1") == SMALL
    assert state.used_ports("h1") == frozenset()
    state.drop_job("never-there")  # no error
    state.drop_task("never-there")


def test_job_group_key_is_released_when_the_job_finishes() -> None:
    state = ClusterState()
    group = JobGroup("prod", "api", "v001")
    job = make_job("j1", application="web", group=group)
    state.put_job(job)
    assert state.job_with_group("web-prod-api-v001") == "j1"
    state.put_job(replace(job, state=JobState.KILL_INITIATED))
    assert state.job_with_group("web-prod-api-v001") == "j1"  # still active
    state.put_job(replace(job, state=JobState.FINISHED, finished_at=1.0))
    assert state.job_with_group("web-prod-api-v001") is None

    # A successor takes the key; the old job's records must not take it away again.
    state.put_job(make_job("j2", application="web", group=group))
    state.put_job(replace(job, state=JobState.FINISHED, finished_at=2.0))
    state.drop_job("j1")
    assert state.job_with_group("web-prod-api-v001") == "j2"
    state.drop_job("j2")
    assert state.job_with_group("web-prod-api-v001") is None


def test_load_skips_tasks_of_unknown_jobs() -> None:
    state = ClusterState()
    state.load(
        [make_job("big", cpu=2.5, memory_mb=2048)],
        [make_task("t1", "big", state=TaskState.STARTED, host_id="h1"), make_task("t2", "gone")],
    )
    assert set(state.tasks) == {"t1"}
    assert state.allocated("h1") == BIG


TASK_IDS = ["t1", "t2", "t3", "t4"]
OWNER = {"t1": "small", "t2": "big", "t3": "small", "t4": "big"}


def _ports(task_id: str, host_id: str | None) -> tuple[int, ...]:
    """Ports come with a placement and stay with it; the scheduler never hands one out twice on a host."""
    if host_id is None:
        return ()
    base = 30000 + 100 * TASK_IDS.index(task_id) + 10 * int(host_id[1:])
    return (base, base + 1)


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(TASK_IDS),
            st.sampled_from(list(TaskState)),
            st.sampled_from([None, "h1", "h2"]),
        ),
        st.sampled_from(TASK_IDS),  # drop the task
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(OPS, st.booleans())
def test_indices_always_match_a_recount_from_the_records(
    ops: list[tuple[str, TaskState, str | None] | str], h2_registers_late: bool
) -> None:
    state = _state()
    hosts = {h: Host(h, Resources(64, 1 << 20, 1 << 20, 10_000, 4)) for h in ("h1", "h2")}
    state.put_host(hosts["h1"])
    if not h2_registers_late:
        state.put_host(hosts["h2"])
    for op in ops:
        if isinstance(op, str):
            state.drop_task(op)
        else:
            task_id, task_state, host_id = op
            if task_state in ON_HOST_STATES and host_id is None:
                host_id = "h1"  # a placed task always names its host
            state.put_task(
                make_task(
                    task_id, OWNER[task_id], state=task_state, host_id=host_id, ports=_ports(task_id, host_id)
                )
            )

        expected_pending = sorted(t.id for t in state.tasks.values() if t.state is TaskState.ACCEPTED)
        assert sorted(t.id for t in state.pending_tasks()) == expected_pending
        for h in ("h1", "h2"):
            held = [t for t in state.tasks.values() if t.on_host and t.host_id == h]
            expected = sum((state.jobs[t.job_id].descriptor.container.resources.vector for t in held), ZERO)
            assert state.allocated(h) == expected
            assert sorted(t.id for t in state.tasks_on_host(h)) == sorted(t.id for t in held)
            assert state.used_ports(h) == {p for t in held for p in t.ports}
            if h in state.hosts:
                # The scheduler's arrays agree with the records.
                assert state.free(hosts[h]) == hosts[h].resources - expected
                c = state.cluster
                assert set(c.used_ports.get(c.index[h], frozenset())) == {p for t in held for p in t.ports}
    if h2_registers_late:
        state.put_host(hosts["h2"])  # charged on registration with what its tasks already hold
        held = [t for t in state.tasks.values() if t.on_host and t.host_id == "h2"]
        expected = sum((state.jobs[t.job_id].descriptor.container.resources.vector for t in held), ZERO)
        assert state.free(hosts["h2"]) == hosts["h2"].resources - expected


def test_reported_images_feed_the_image_locality_arrays() -> None:
    state = _state()
    state.put_host(Host("h1", Resources(8, 8192, 10_000, 1000, 0)))
    state.put_host(Host("h2", Resources(8, 8192, 10_000, 1000, 0)))
    state.set_images("h1", ["app:v1", "base:1"])
    state.set_images("h2", ["app:v1"])
    c = state.cluster
    assert c.image_hosts["app:v1"][[c.index["h1"], c.index["h2"]]].tolist() == [True, True]
    state.set_images("h1", ["base:1"])  # app:v1 was collected on h1
    assert c.image_hosts["app:v1"][[c.index["h1"], c.index["h2"]]].tolist() == [False, True]
    assert state.host_images["h1"] == frozenset({"base:1"})
