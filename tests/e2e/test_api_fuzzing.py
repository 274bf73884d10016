"""Property-based fuzzing of the whole OpenAPI document: the API does what the document says.

schemathesis generates requests from every operation's schema (examples, boundary values,
then random ones) and sends them to the running gateway, as an admin, a treasurer and a
member of staff, so each role's paths are reached past the permission checks. Every check it
has runs on every answer: no server error; every status, content type, header and body as
documented (the response schemas are what flask-smorest dumps, so they cannot drift); data
the schema calls invalid refused, data it calls valid accepted; a missing or broken token
refused 401; an undeclared method 405 with ``Allow``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import Stack

SCHEMATHESIS = shutil.which("schemathesis", path=os.path.dirname(sys.executable))

# What the checks need to know about this API that its schema cannot say.
CONFIG = """
[checks.positive_data_acceptance]
# A well-formed request that breaks a business rule is refused 422 (README, "How it fits
# together"): a branch code no branch has, a policy or a cap that does not hold together, a
# wrong one-time code, an Idempotency-Key already used for another request. Which codes,
# branches and keys exist is data, not schema; 422 is documented on each such operation.
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[checks.negative_data_rejection]
# The HTTP server in front refuses a request line over 4 KiB with 414 before the API sees it
# (a generated query string can be that long); that is a rejection too, documented as such.
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "414", "415", "422", "428", "429", "5xx"]

[[operations]]
include-path = "/api/v1/requisitions/{requisition_id}/receipts"
# A receipt is accepted by its content (PDF, PNG or JPEG magic bytes), which no schema can
# express: a generated file is refused 400 "invalid-receipt", as documented.
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "400", "401", "403", "404", "409", "422", "429", "5xx",
]
"""


@pytest.mark.parametrize("user", ["admin", "tom", "alice"])
def test_the_api_answers_as_its_openapi_document_says(
    stack: Stack, tokens: dict[str, str], user: str, tmp_path: Path
) -> None:
    assert SCHEMATHESIS, "schemathesis is a dev dependency"
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            f"{stack.base_url}/api/v1/openapi.json",
            "--header",
            f"Authorization: Bearer {tokens[user]}",
            "--checks",
            "all",
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
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    assert " passed" in summary
    assert "Server error" not in summary
    generated = re.search(r"(\d+) generated", summary)
    assert generated, summary
    assert int(generated.group(1)) > 1000, summary  # every operation was exercised, not cut short
