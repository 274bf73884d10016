"""Property-based fuzzing of the whole OpenAPI document: no input earns a server error.

schemathesis generates requests from every operation's schema (examples, boundary values,
then random ones) and sends them to the running gateway, as an admin, a treasurer and a
member of staff, so each role's paths are reached past the permission checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Stack

SCHEMATHESIS = shutil.which("schemathesis", path=os.path.dirname(sys.executable))


@pytest.mark.parametrize("user", ["admin", "tom", "alice"])
def test_no_generated_request_gets_a_server_error(
    stack: Stack, tokens: dict[str, str], user: str, tmp_path: Path
) -> None:
    assert SCHEMATHESIS, "schemathesis is a dev dependency"
    done = subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{stack.base_url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {tokens[user]}",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--seed",
            "20261124",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary
    assert " passed" in summary
    assert "Server error" not in summary
