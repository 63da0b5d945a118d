"""``corral hostgroup ...`` against a running master with simulated agents: apply a file, list, show,
set a few fields, explain why each host is kept, delete — tables for people, ``--json`` for programs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.agent.pool import FleetSpec
from corral.api.models import HostGroupBody
from corral.domain.hostgroup import validate_host_group
from tests.cli.test_cli import as_json, corral
from tests.support.cluster import Fleet, MasterProcess, wait_for

EXAMPLE = Path(__file__).parents[2] / "examples" / "hostgroup.yaml"

# No provider: shown and explained, never scaled (no test here starts a host).
GROUP = {
    "name": "batch",
    "description": "batch hosts",
    "shape": {
        "resources": {"cpu": 8, "memory_mb": 32768},
        "zones": ["zone-a", "zone-b"],
        "instance_type": "sim-8",
    },
    "min_size": 1,
    "max_size": 10,
    "provider": {"kind": "none"},
}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    m = MasterProcess(Path(tmp_path_factory.mktemp("hostgroup-cli"))).start()
    fleet = Fleet(
        m.url, FleetSpec(count=2, id_prefix="batch", host_group="batch", heartbeat_backoff_max_s=1.0)
    )
    try:
        fleet.wait_connected()
        yield m
    except BaseException:
        print(m.log()[-20000:])
        raise
    finally:
        fleet.close()
        m.close()


def test_the_example_file_is_a_valid_host_group() -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    group = HostGroupBody.model_validate(doc).to_domain(doc["name"])
    validate_host_group(group)
    r = group.shape.resources
    assert (r.cpu, r.memory_mb, group.shape.zones) == (8, 32768, ("zone-a", "zone-b"))
    assert (group.min_size, group.max_size, group.min_idle, group.provider.kind) == (1, 20, 1, "local")


@pytest.mark.integration
def test_apply_list_show_set_and_delete(master: MasterProcess, tmp_path: Path) -> None:
    path = tmp_path / "group.yaml"
    path.write_text(yaml.safe_dump(GROUP))
    applied = corral(master, "hostgroup", "apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr
    assert "host group batch applied" in applied.stdout

    listed = corral(master, "hostgroup", "ls")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if " batch " in line)
    assert "none (autoscale off)" not in row and "none" in row and "1/10" in row
    wait_for(lambda: as_json(master, "hostgroup", "ls")[0]["status"]["hosts"] == 2, what="2 hosts counted")
    [group] = as_json(master, "hostgroup", "ls")
    assert (group["name"], group["status"]["idle"]) == ("batch", 2)

    shown = corral(master, "hostgroup", "show", "batch")
    assert shown.returncode == 0, shown.stderr
    assert "host group batch" in shown.stdout and "batch hosts" in shown.stdout
    assert "8 cpu, 32768 MB" in shown.stdout and "zone-a, zone-b" in shown.stdout
    assert "hosts 2 ready" in shown.stdout

    # set changes the fields it names; the rest (the shape, the description) stays as it was
    changed = as_json(master, "hostgroup", "set", "batch", "--min", "2", "--max", "4", "--min-idle", "1")
    assert (changed["min_size"], changed["max_size"], changed["min_idle"]) == (2, 4, 1)
    assert changed["shape"]["zones"] == ["zone-a", "zone-b"] and changed["description"] == "batch hosts"
    said = corral(master, "hostgroup", "set", "batch", "--no-autoscale", "--scale-down-cooldown", "30")
    assert said.returncode == 0, said.stderr
    assert "autoscale False" in said.stdout and "scale_down_cooldown_s 30" in said.stdout
    shown_json = as_json(master, "hostgroup", "show", "batch")
    assert (shown_json["autoscale"], shown_json["scale_down_cooldown_s"], shown_json["max_size"]) == (
        False,
        30,
        4,
    )

    refused = corral(master, "hostgroup", "set", "batch", "--min", "9")  # above max 4
    assert refused.returncode == 1
    assert "invalid_host_group" in refused.stderr and "[min_size]" in refused.stderr
    assert as_json(master, "hostgroup", "show", "batch")["min_size"] == 2  # unchanged
    nothing = corral(master, "hostgroup", "set", "batch")
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr

    deleted = corral(master, "hostgroup", "delete", "batch")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    missing = corral(master, "hostgroup", "show", "batch")
    assert missing.returncode == 1 and "host_group_not_found" in missing.stderr
    assert as_json(master, "hostgroup", "ls") == []


@pytest.mark.integration
def test_explain_prints_why_each_host_is_kept(master: MasterProcess) -> None:
    applied = corral(master, "--json", "hostgroup", "apply", "-f", "-", stdin=json.dumps(GROUP))
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["name"] == "batch"

    def weighed() -> dict[str, Any] | None:
        data: dict[str, Any] = as_json(master, "hostgroup", "explain", "batch")
        return data if [h.get("kind") for h in data["hosts"]] == ["not_scalable"] * 2 else None

    data = wait_for(weighed, what="both hosts weighed by an autoscaler round")
    assert [h["host_id"] for h in data["hosts"]] == ["batch-0000", "batch-0001"]
    assert "shortfall" in data and "recent" in data
    table = corral(master, "hostgroup", "explain", "batch")
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "host group batch (not autoscaled)" in out
    for host in ("batch-0000", "batch-0001"):
        line = next(line for line in out.splitlines() if host in line)
        assert "kept" in line and "not_scalable" in line and "no provider" in line, line
    assert "last shortfall:" in out
    assert corral(master, "hostgroup", "delete", "batch").returncode == 0


@pytest.mark.integration
def test_apply_refuses_a_file_without_a_name_and_reports_bad_fields(
    master: MasterProcess, tmp_path: Path
) -> None:
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text(yaml.safe_dump({k: v for k, v in GROUP.items() if k != "name"}))
    result = corral(master, "hostgroup", "apply", "-f", str(nameless))
    assert result.returncode == 2 and "with a name" in result.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**GROUP, "provider": {"kind": "aws"}, "max_sizes": 3}))
    result = corral(master, "hostgroup", "apply", "-f", str(bad))
    assert result.returncode == 1 and "unknown_field" in result.stderr and "[max_sizes]" in result.stderr
    bad.write_text(yaml.safe_dump({**GROUP, "provider": {"kind": "aws"}}))
    result = corral(master, "hostgroup", "apply", "-f", str(bad))
    assert result.returncode == 1 and "[provider.config.asg]" in result.stderr
    assert corral(master, "hostgroup", "show", "batch").returncode == 1  # nothing applied
