"""The autoscaler's rule, case by case: scale up by the shortfall, scale down within min size, min idle,
cooldowns and the step, terminate only what is drained and empty on a trusted picture, replace bad hosts
within their budget, cancel removals when demand returns, back off after provider failures."""

from __future__ import annotations

from dataclasses import replace

from corral.autoscale.decide import STEP_PERCENT, Context, GroupInput, decide
from corral.autoscale.model import (
    GroupRecord,
    HostView,
    Kept,
    Removal,
    RemovalKind,
)
from corral.domain.hostgroup import HostGroup, ProviderRef

NOW = 10_000.0
LOCAL = ProviderRef("local")


def group(**kw: object) -> HostGroup:
    base = dict(
        name="g",
        provider=LOCAL,
        min_size=0,
        max_size=100,
        scale_up_cooldown_s=60.0,
        scale_down_cooldown_s=300.0,
        replace_after_s=600.0,
    )
    base.update(kw)
    return HostGroup(**base)  # type: ignore[arg-type]


def hosts(n: int, *, tasks: int = 0, prefix: str = "h", **kw: object) -> list[HostView]:
    """``n`` hosts, unneeded long enough to be removed if the rule allows (idle, or consolidation says so)."""
    kw.setdefault("unneeded_since", NOW - 1000)
    return [HostView(f"{prefix}{i:03d}", tasks=tasks, registered_at=float(i), **kw) for i in range(n)]  # type: ignore[arg-type]


def run(inp: GroupInput, *, trusted: bool = True, now: float = NOW, pending: int = 0):  # type: ignore[no-untyped-def]
    return decide(inp, Context(now, trusted, pending))


OLD = GroupRecord(desired=None, last_up_at=NOW - 10_000, last_down_at=NOW - 10_000)


# -- scale up -------------------------------------------------------------------------------------


def test_the_shortfall_is_asked_at_once_within_max_size() -> None:
    d = run(GroupInput(group(), OLD, hosts(10, tasks=3), instances=10, wanted=303))
    assert d.scale_to == 100  # 10 + 303 capped at max 100
    assert any("at max size" in n for n in d.notes)
    assert d.record.desired == 100 and d.record.last_up_at == NOW
    d = run(GroupInput(group(max_size=0), OLD, hosts(10, tasks=3), instances=10, wanted=303))
    assert d.scale_to == 313
    assert "303 for pending tasks" in d.scale_reason


def test_hosts_on_their_way_count_toward_the_size() -> None:
    d = run(GroupInput(group(), OLD, hosts(10, tasks=3), coming=5, instances=15, wanted=2))
    assert d.scale_to == 17


def test_scale_up_waits_out_its_cooldown() -> None:
    record = replace(OLD, last_up_at=NOW - 30)
    d = run(GroupInput(group(), record, hosts(10, tasks=3), instances=10, wanted=5))
    assert d.scale_to is None
    assert any("cooling down" in n for n in d.notes)
    d = run(GroupInput(group(), record, hosts(10, tasks=3), instances=10, wanted=5), now=NOW + 31)
    assert d.scale_to == 15


def test_min_size_is_restored_without_cooldown() -> None:
    record = replace(OLD, last_up_at=NOW - 1)
    d = run(GroupInput(group(min_size=4), record, hosts(2, tasks=1), instances=2))
    assert d.scale_to == 4


def test_idle_hosts_missing_below_min_idle_are_asked_for() -> None:
    d = run(GroupInput(group(min_idle=2), OLD, hosts(3, tasks=1), instances=3))
    assert d.scale_to == 5
    assert "to keep 2 idle" in d.scale_reason
    d = run(GroupInput(group(min_idle=2), OLD, hosts(3, tasks=1), coming=2, instances=5))
    assert d.scale_to is None  # the two on their way will be idle


def test_the_idle_top_up_waits_for_a_burst_to_be_sized_then_goes_with_it() -> None:
    inp = GroupInput(group(min_idle=1), OLD, hosts(3, tasks=1), instances=3)
    d = decide(inp, Context(NOW, True, pending=0, young=40))  # a burst just arrived: not yet counted
    assert d.scale_to is None and any("waits for their shortfall" in n for n in d.notes)
    d = decide(replace(inp, wanted=5), Context(NOW, True, pending=40))
    assert d.scale_to == 9 and d.scale_reason == "5 for pending tasks (trial placement); 1 to keep 1 idle"


def test_demand_cancels_removals_before_asking_for_new_hosts() -> None:
    removing = {
        "h000": Removal(RemovalKind.SCALE_DOWN, NOW - 5, "idle"),
        "h001": Removal(RemovalKind.REPLACE, NOW - 5, "replacing: unhealthy"),
    }
    record = replace(OLD, removing=removing)
    views = hosts(4, tasks=1, draining=True, schedulable=False)
    d = run(GroupInput(group(), record, views, instances=4, wanted=3))
    assert d.cancel == ("h000",)  # a replacement is never cancelled
    assert d.scale_to == 6  # 4 + the 2 still wanted
    assert "h000" not in d.record.removing and "h001" in d.record.removing


def test_a_group_without_provider_is_never_scaled() -> None:
    g = group(provider=ProviderRef("none"), min_size=5)
    d = run(GroupInput(g, OLD, hosts(2), wanted=10))
    assert d.scale_to is None and not d.remove and not d.terminate
    assert {k.kind for k in d.kept.values()} == {"not_scalable"}


# -- scale down -----------------------------------------------------------------------------------


def test_idle_hosts_above_min_idle_are_removed_within_the_step() -> None:
    views = hosts(8)  # all idle
    d = run(GroupInput(group(min_idle=2), OLD, views, instances=8))
    step = max(1, int(8 * STEP_PERCENT / 100))
    assert len(d.remove) == step
    kept_idle = {h for h, k in d.kept.items() if k.kind == "min_idle"}
    assert kept_idle == {"h000", "h001"}  # the longest-registered idle hosts stay
    assert all(r.kind is RemovalKind.SCALE_DOWN for r in d.remove.values())
    assert d.record.last_down_at == NOW
    assert d.scale_to is None  # a removal is a drain; the size drops when it is terminated


def test_a_host_must_stay_unneeded_for_a_while_before_it_is_removed() -> None:
    views = [*hosts(2, prefix="old"), HostView("new", registered_at=NOW - 5, unneeded_since=NOW - 5)]
    d = run(GroupInput(group(unneeded_for_s=60.0), OLD, [*views, HostView("fresh")], instances=4))
    assert set(d.remove) == {"old001"}  # the step: 1 of 4; the newest unneeded host first
    assert d.kept["new"].kind == "unneeded_for" and "5s of the 60s" in d.kept["new"].detail
    assert d.kept["fresh"].kind == "unneeded_for"  # never seen unneeded yet


def test_never_below_min_size() -> None:
    d = run(GroupInput(group(min_size=7), OLD, hosts(8), instances=8))
    assert len(d.remove) == 1
    assert any(k.kind == "min_size" for k in d.kept.values())


def test_max_idle_keeps_that_many_idle_hosts() -> None:
    d = run(GroupInput(group(min_idle=1, max_idle=6), OLD, hosts(8), instances=8))
    assert len(d.remove) == 2
    assert sum(1 for k in d.kept.values() if k.kind in ("max_idle", "min_idle")) == 6


def test_scale_down_waits_for_its_cooldown_after_any_scale() -> None:
    record = replace(OLD, last_up_at=NOW - 100)
    d = run(GroupInput(group(), record, hosts(4), instances=4))
    assert not d.remove
    assert {k.kind for k in d.kept.values()} == {"cooldown"}


def test_busy_hosts_go_only_if_consolidation_empties_them() -> None:
    views = hosts(4, tasks=2)
    consolidation: dict[str, Kept | None] = {
        "h000": None,
        "h001": Kept("tasks_fit_nowhere", "its 2 tasks fit nowhere else: no host has 12 cpu free"),
    }
    d = run(GroupInput(group(), OLD, views, instances=4, consolidation=consolidation))
    assert set(d.remove) == {"h000"}
    assert d.kept["h001"].kind == "tasks_fit_nowhere"
    assert d.kept["h002"].kind == "not_tried"


def test_a_budget_keeps_a_host() -> None:
    views = hosts(2, tasks=1)
    blocked = {"h000": Kept("budget", "job j: disruption budget: 3 of 3 tasks must stay ready")}
    d = run(GroupInput(group(), OLD, views, instances=2, consolidation={"h000": None}, blocked=blocked))
    assert not d.remove
    assert d.kept["h000"].kind == "budget"


def test_nothing_is_removed_or_terminated_on_an_untrusted_picture() -> None:
    removing = {"h000": Removal(RemovalKind.SCALE_DOWN, NOW - 5, "idle")}
    views = [HostView("h000", draining=True, schedulable=False), *hosts(4, prefix="x")]
    d = run(GroupInput(group(), replace(OLD, removing=removing), views, instances=5), trusted=False)
    assert not d.remove and not d.terminate
    assert "incomplete" in d.waiting["h000"]
    assert {k.kind for k in d.kept.values()} == {"unsure"}


def test_pending_demand_stops_scale_down() -> None:
    d = run(GroupInput(group(max_size=4), OLD, hosts(4), instances=4, wanted=2), pending=9)
    assert not d.remove
    assert {k.kind for k in d.kept.values()} == {"demand"}


# -- termination ----------------------------------------------------------------------------------


def test_only_drained_empty_hosts_are_terminated_and_the_size_drops() -> None:
    removing = {
        "h000": Removal(RemovalKind.SCALE_DOWN, NOW - 50, "idle"),
        "h001": Removal(RemovalKind.SCALE_DOWN, NOW - 50, "its 1 task(s) fit on other hosts"),
        "h002": Removal(RemovalKind.SCALE_DOWN, NOW - 50, "idle"),
    }
    views = [
        HostView("h000", tasks=0, draining=True, schedulable=False),
        HostView("h001", tasks=1, draining=True, schedulable=False),
        HostView("h002", tasks=0, draining=False),  # its drain is not in place yet
        *hosts(3, tasks=1, prefix="k"),
    ]
    record = replace(OLD, desired=6, removing=removing)
    d = run(GroupInput(group(), record, views, instances=6))
    assert d.terminate == ("h000",)
    assert "draining: 1 task(s)" in d.waiting["h001"]
    assert "being started" in d.waiting["h002"]
    assert d.record.terminating == ("h000",)
    assert d.record.desired == 5 and d.scale_to is None  # the provider decrements on terminate


def test_a_termination_is_never_asked_twice() -> None:
    record = replace(OLD, desired=5, terminating=("h000",))
    views = [HostView("h000", draining=True, schedulable=False), *hosts(4, tasks=1, prefix="k")]
    d = run(GroupInput(group(), record, views, instances=5))
    assert d.terminate == ()
    assert d.record.terminating == ("h000",)
    # The provider says it is gone: it leaves the record's terminating for terminated.
    d = run(GroupInput(group(), d.record, views, instances=4, gone=frozenset({"h000"})))
    assert d.record.terminating == () and d.record.terminated == ("h000",)
    # Asked, yet still running long after (the asking leader died before its call): asked again.
    d = run(GroupInput(group(), record, views, instances=5, retry_terminate=frozenset({"h000"})))
    assert d.terminate == ("h000",)


def test_provider_backoff_holds_calls() -> None:
    removing = {"h000": Removal(RemovalKind.SCALE_DOWN, NOW - 50, "idle")}
    record = replace(OLD, removing=removing, retry_at=NOW + 5, failures=2, last_error="scale_to: throttled")
    views = [HostView("h000", draining=True, schedulable=False), *hosts(2, tasks=1, prefix="k")]
    d = run(GroupInput(group(), record, views, instances=3, wanted=4))
    assert d.scale_to is None and d.terminate == ()
    assert any("back off" in n for n in d.notes)


# -- bad hosts ------------------------------------------------------------------------------------


def test_bad_hosts_are_replaced_make_before_break_within_their_budget() -> None:
    bad = [
        HostView(f"b{i}", tasks=1, bad_since=NOW - 700, bad_detail="quarantined", registered_at=i)
        for i in range(3)
    ]
    views = [*bad, *hosts(7, tasks=1)]
    g = group(replace_max_percent=20.0)  # 2 of 10 at a time
    d = run(GroupInput(g, OLD, views, instances=10))
    assert set(d.remove) == {"b0", "b1"}
    assert all(r.kind is RemovalKind.REPLACE for r in d.remove.values())
    assert d.scale_to == 12  # the replacements are asked first
    assert any("b2 waits to be replaced" in n for n in d.notes)


def test_a_host_bad_for_less_than_the_threshold_stays() -> None:
    views = [HostView("b0", tasks=1, bad_since=NOW - 100, bad_detail="unhealthy"), *hosts(3, tasks=1)]
    d = run(GroupInput(group(), OLD, views, instances=4))
    assert not d.remove and d.scale_to is None
