"""Layering as a checked rule: a service never imports another service; shared imports no service."""

from __future__ import annotations

import ast

from tests.support import ROOT

SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())


def imported_modules(source: str) -> set[str]:
    """Every module an import statement in ``source`` names (relative imports resolved later)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(owner: str | None, source: str) -> list[str]:
    """Imports of ``services.<x>`` with x != owner (owner None: any service, or pettycash)."""
    bad = []
    for module in imported_modules(source):
        parts = module.split(".")
        if parts[0] == "pettycash" and owner is None:
            bad.append(module)
        if parts[0] == "services" and len(parts) > 1 and parts[1] != owner:
            bad.append(module)
    return sorted(bad)


def test_the_checker_catches_a_cross_service_import() -> None:
    assert violations("approval", "from services.ledger.models import Account") == [
        "services.ledger.models",
        "services.ledger.models.Account",
    ]
    assert violations("approval", "import services.requisition.domain as d") == ["services.requisition.domain"]
    assert violations("approval", "from services import payment") == ["services.payment"]
    assert violations("approval", "from services.approval import domain\nfrom shared.db import types") == []
    assert violations(None, "from pettycash.cli import main") == ["pettycash.cli", "pettycash.cli.main"]


def test_no_service_imports_another_service() -> None:
    found = {}
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            bad = violations(service, path.read_text())
            if bad:
                found[str(path.relative_to(ROOT))] = bad
    assert found == {}


def test_shared_imports_no_service() -> None:
    found = {}
    for path in (ROOT / "shared").rglob("*.py"):
        bad = violations(None, path.read_text())
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    assert found == {}


def test_every_service_has_the_same_rooms() -> None:
    expected = {
        "__init__.py",
        "models.py",
        "domain.py",
        "service.py",
        "schemas.py",
        "tasks.py",
        "worker.py",
        "migrations",
    }
    for service in ("requisition", "approval", "payment", "ledger"):
        present = {p.name for p in (ROOT / "services" / service).iterdir()}
        assert expected <= present, (service, expected - present)
