"""MasterConfig.from_env: CORRAL_<FIELD> overrides, typed like the field they set."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.control.config import MasterConfig, from_env
from corral.jobs.config import JobManagerConfig


def test_no_environment_gives_the_defaults() -> None:
    assert from_env(environ={}) == MasterConfig()


def test_master_overrides_parse_to_the_field_types() -> None:
    config = from_env(
        environ={
            "CORRAL_HEARTBEAT_TIMEOUT_S": "1.5",
            "CORRAL_HEARTBEAT_INTERVAL_S": "3",
            "CORRAL_LISTEN_PORT": "9090",
            "CORRAL_DATA_DIR": "/var/lib/corral",
            "CORRAL_SQLITE_SYNCHRONOUS": "NORMAL",
            "CORRAL_UNKNOWN_TASK_KILL_LIMIT": "12",
        }
    )
    assert config.heartbeat_timeout_s == 1.5
    assert config.heartbeat_interval_s == 3.0
    assert type(config.heartbeat_interval_s) is float
    assert config.listen_port == 9090
    assert type(config.listen_port) is int
    assert config.data_dir == Path("/var/lib/corral")
    assert isinstance(config.data_dir, Path)
    assert config.sqlite_synchronous == "NORMAL"
    assert config.unknown_task_kill_limit == 12
    assert config.resolved_store_url == "sqlite:////var/lib/corral/corral.db"
    assert config.listen_host == MasterConfig().listen_host  # untouched fields keep their defaults


def test_job_manager_overrides_reach_the_nested_config() -> None:
    config = from_env(environ={"CORRAL_LOST_AFTER_S": "2.0", "CORRAL_LAUNCHED_TIMEOUT_S": "10"})
    assert config.jobs.lost_after_s == 2.0
    assert config.jobs.launched_timeout_s == 10.0
    assert type(config.jobs.launched_timeout_s) is float
    assert config.jobs.start_initiated_timeout_s == JobManagerConfig().start_initiated_timeout_s


def test_overrides_apply_on_top_of_a_given_base() -> None:
    base = MasterConfig(listen_port=1234, store_url="postgresql://db/corral")
    config = from_env(base, {"CORRAL_HEARTBEAT_TIMEOUT_S": "4.5"})
    assert config.listen_port == 1234
    assert config.store_url == "postgresql://db/corral"
    assert config.resolved_store_url == "postgresql://db/corral"
    assert config.heartbeat_timeout_s == 4.5


def test_unrelated_and_unknown_variables_are_ignored() -> None:
    config = from_env(environ={"CORRAL_NO_SUCH_KNOB": "1", "HEARTBEAT_TIMEOUT_S": "1", "CORRAL_JOBS": "x"})
    assert config == MasterConfig()


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_LOST_AFTER_S", "7.5")
    monkeypatch.setenv("CORRAL_LISTEN_PORT", "8181")
    config = from_env()
    assert config.jobs.lost_after_s == 7.5
    assert config.listen_port == 8181


@pytest.mark.parametrize("name", ["CORRAL_HEARTBEAT_TIMEOUT_S", "CORRAL_LISTEN_PORT", "CORRAL_LOST_AFTER_S"])
def test_malformed_number_is_an_error_not_a_silent_default(name: str) -> None:
    with pytest.raises(ValueError, match="fast"):
        from_env(environ={name: "fast"})


def test_values_take_the_declared_type_not_the_type_of_the_current_value() -> None:
    base = MasterConfig(heartbeat_timeout_s=10)  # an int where a float is declared
    config = from_env(base, {"CORRAL_HEARTBEAT_TIMEOUT_S": "1.5", "CORRAL_LISTEN_PORT": "9000"})
    assert config.heartbeat_timeout_s == 1.5
    assert isinstance(from_env(base, {"CORRAL_HEARTBEAT_TIMEOUT_S": "3"}).heartbeat_timeout_s, float)
    assert config.listen_port == 9000
