"""The operator's command line edits the approval policy: a new version, validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import pettycash


def test_policy_show_and_set_make_a_new_version(settings: Any, test_env: dict[str, str], tmp_path: Path) -> None:
    shown = pettycash(test_env, "policy", "show")
    assert shown.returncode == 0, shown.stderr
    before = json.loads(shown.stdout)
    assert {t["name"] for t in before["tiers"]} == {"T1", "T2", "T3", "T4"}

    changed = dict(before, urgent_sla_hours=4)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(changed))
    stored = pettycash(test_env, "policy", "set", str(path))
    assert stored.returncode == 0, stored.stderr
    after = json.loads(pettycash(test_env, "policy", "show").stdout)
    assert after["version"] == before["version"] + 1
    assert after["urgent_sla_hours"] == 4

    broken = dict(before, tiers=[t for t in before["tiers"] if t["name"] != "T4"])
    path.write_text(json.dumps(broken))
    refused = pettycash(test_env, "policy", "set", str(path))
    assert refused.returncode != 0
    assert "unbounded" in refused.stderr or "T1..Tn" in refused.stderr

    path.write_text(json.dumps(before))  # leave the default shape for the tests after this one
    assert pettycash(test_env, "policy", "set", str(path)).returncode == 0
