from __future__ import annotations

from pathlib import Path

import pytest

from shared.config import ConfigError, load_settings


def test_embedded_defaults_need_nothing_installed(tmp_path: Path) -> None:
    settings = load_settings({"PETTYCASH_VAR_DIR": str(tmp_path)})
    assert settings.embedded
    assert settings.database_url("ledger") == f"sqlite:///{tmp_path}/db/ledger.sqlite"
    assert settings.result_backend.startswith("db+sqlite:///")
    assert settings.gateway_port == 8000


def test_urls_from_the_environment() -> None:
    settings = load_settings(
        {
            "PETTYCASH_DATABASE_URL": "postgresql+psycopg://u@db/pc_{service}",
            "PETTYCASH_LEDGER_DATABASE_URL": "postgresql+psycopg://u@ledgerdb/ledger",
            "PETTYCASH_BROKER_URL": "redis://r:6379/0",
            "PETTYCASH_VISIBILITY_TIMEOUT": "120",
        }
    )
    assert not settings.embedded
    assert settings.database_url("approval") == "postgresql+psycopg://u@db/pc_approval"
    assert settings.database_url("ledger") == "postgresql+psycopg://u@ledgerdb/ledger"
    assert settings.result_backend == "redis://r:6379/0"
    assert settings.broker_transport_options["visibility_timeout"] == 120


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PETTYCASH_DATABASE_URL": "postgresql://db/x"}, "must contain"),
        ({"PETTYCASH_GATEWAY_PORT": "eighty"}, "integer"),
        ({"PETTYCASH_ENV": "production"}, "SECRET_KEY"),
        ({"PETTYCASH_ENV": "test", "PETTYCASH_FAULT_SLEEP": "task=soon"}, "FAULT_SLEEP"),
        ({"PETTYCASH_ENV": "staging"}, "must be one of"),
    ],
)
def test_bad_settings_stop_the_start(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_fault_injection_parses_per_task() -> None:
    settings = load_settings({"PETTYCASH_ENV": "test", "PETTYCASH_FAULT_SLEEP": "a.b=1.5, c.d=2"})
    assert settings.fault_sleep == {"a.b": 1.5, "c.d": 2.0}


@pytest.mark.parametrize(
    "switch",
    [
        {"PETTYCASH_PROVIDER_FAULTS": "bank=permanent"},
        {"PETTYCASH_PROVIDER_LATENCY_MS": "200"},
        {"PETTYCASH_FAULT_SLEEP": "a.b=1"},
        {"PETTYCASH_FAULT_DUPLICATE_DELIVERY": "1"},
    ],
)
@pytest.mark.parametrize("env", ["development", "production"])
def test_fault_switches_act_only_in_test_and_demo(switch: dict[str, str], env: str) -> None:
    keys = {"PETTYCASH_SECRET_KEY": "k" * 32, "PETTYCASH_OTP_ENCRYPTION_KEY": "o" * 44}
    with pytest.raises(ConfigError, match="set PETTYCASH_ENV to test or demo"):
        load_settings({"PETTYCASH_ENV": env, **keys, **switch})
    for allowed in ("test", "demo"):
        assert load_settings({"PETTYCASH_ENV": allowed, **switch}).faults_allowed


def test_outside_test_and_demo_faults_are_not_allowed() -> None:
    assert not load_settings({"PETTYCASH_ENV": "development"}).faults_allowed
