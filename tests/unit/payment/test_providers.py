"""Fault injection is parsed strictly and chosen per payee (the provider books are tested on PostgreSQL)."""

from __future__ import annotations

import pytest

from services.payment.providers import Fault, FaultKind, ProviderSettings, marker_fault, parse_faults
from shared.config import ConfigError

NO_DB = None  # choosing a provider touches no database


def test_the_documented_example_parses() -> None:
    assert parse_faults("bank=transient:2;mobile_money=permanent") == {
        "bank": Fault(FaultKind.TRANSIENT, 2),
        "mobile_money": Fault(FaultKind.PERMANENT),
    }


def test_empty_means_no_faults_and_spaces_are_forgiven() -> None:
    assert parse_faults("") == {}
    assert parse_faults(" bank = transient ; ") == {"bank": Fault(FaultKind.TRANSIENT, 1)}
    assert parse_faults("mobile_money=lost_reply") == {"mobile_money": Fault(FaultKind.LOST_REPLY)}


@pytest.mark.parametrize(
    "raw",
    [
        "cash=transient",  # cash pays at once, always
        "crypto=permanent",
        "bank=flaky",
        "bank=transient:two",
        "bank=transient:0",
        "bank=permanent:3",  # a count means nothing for a permanent fault: a typo
        "bank",
    ],
)
def test_malformed_rules_stop_the_worker_at_start_up(raw: str) -> None:
    with pytest.raises(ConfigError, match="PETTYCASH_PROVIDER_FAULTS"):
        parse_faults(raw)


@pytest.mark.parametrize(
    ("account_ref", "fault"),
    [
        ("0712345678", None),
        ("FAIL-TRANSIENT-2", Fault(FaultKind.TRANSIENT, 2)),
        ("acct-FAIL-TRANSIENT-12-x", Fault(FaultKind.TRANSIENT, 12)),
        ("FAIL-PERMANENT", Fault(FaultKind.PERMANENT)),
        ("FAIL-LOST-REPLY", Fault(FaultKind.LOST_REPLY)),
    ],
)
def test_markers_in_the_account_reference(account_ref: str, fault: Fault | None) -> None:
    assert marker_fault(account_ref) == fault


def test_a_marker_overrides_the_rule_for_its_method() -> None:
    config = ProviderSettings.parse("bank=permanent", latency_ms=25, markers=True)
    marked = config.for_payee("bank", "FAIL-TRANSIENT-1", NO_DB)  # type: ignore[arg-type]
    plain = config.for_payee("bank", "0011223344", NO_DB)  # type: ignore[arg-type]
    other = config.for_payee("mobile_money", "0712345678", NO_DB)  # type: ignore[arg-type]
    assert (marked.name, marked.fault, marked.latency_ms) == ("bank", Fault(FaultKind.TRANSIENT, 1), 25)
    assert plain.fault == Fault(FaultKind.PERMANENT)
    assert other.fault is None


def test_markers_are_plain_text_where_faults_are_not_allowed() -> None:
    config = ProviderSettings.parse("", latency_ms=0)  # markers=False: Settings.faults_allowed outside test and demo
    assert config.for_payee("bank", "FAIL-PERMANENT", NO_DB).fault is None  # type: ignore[arg-type]


def test_cash_pays_at_once_whatever_the_rules_or_markers() -> None:
    cash = ProviderSettings.parse("bank=permanent", latency_ms=500).for_payee("cash", "FAIL-PERMANENT", NO_DB)  # type: ignore[arg-type]
    assert (cash.name, cash.fault, cash.latency_ms) == ("cash", None, 0)


def test_an_unknown_method_has_no_provider() -> None:
    with pytest.raises(ValueError, match="no provider"):
        ProviderSettings.parse("", 0).for_payee("cheque", "", NO_DB)  # type: ignore[arg-type]
