"""The schemathesis CLI, as a user's tooling runs it, against `unique-codes serve` on DynamoDB Local: requests
generated from /openapi.json (valid and invalid ones, one operation after another as its links allow), every check.

Whatever it sends, the answer is never a 5xx (except the documented 503), its status and headers are ones the
document declares, its body matches the declared schema, a request the document admits is accepted and one it
refuses is refused. `schemathesis.toml` beside this file allows only the answers the API is right to give and no
schema can tell (the 422 of a reused Idempotency-Key, the byte limits of the metadata); see there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData

from tests.integration.schemathesis_hooks import refused_for_bytes
from tests.integration.serving import serving

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIG = Path(__file__).with_name("schemathesis.toml")
SECONDS = int(os.environ.get("FUZZ_SECONDS", "25"))
"""The CLI's time budget: its coverage, fuzzing and stateful phases repeat until it is spent."""


@pytest.fixture(scope="module")
def fuzzed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pools = (
        '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 3000\n\n'
        '[pools.tickets]\nalphabet = "numeric"\nlength = 6\nprefix = "T-"\npattern = "###-###"\ntarget = 500\n'
    )
    with serving("dynamodb-local", pools, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


def test_the_schemathesis_cli_with_every_check_finds_nothing(fuzzed_url: str) -> None:
    started = time.monotonic()
    # From the repository's root, where the configuration's `hooks` path points.
    result = subprocess.run(
        [str(BIN / "schemathesis"), "--config-file", str(CONFIG), "run", f"{fuzzed_url}/openapi.json",
         "--checks", "all", "--max-time", str(SECONDS), "--no-color"],
        cwd=ROOT, capture_output=True, text=True, timeout=SECONDS + 120, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Operations:       5 selected / 5 total" in output, output
    assert "Tested: 5" in output, output
    assert "No issues found" in output, output
    assert time.monotonic() - started < SECONDS + 30, output


def test_the_hooks_drop_only_a_refusal_for_the_byte_limits() -> None:
    """The one refusal `schemathesis_hooks.py` lets pass, and only that one."""
    rejected = RejectedPositiveData(operation="POST /codes", message="", status_code=400, allowed_statuses=["2xx"])
    too_long = {"error": {"code": "invalid_request", "message": "usedBy is longer than 256 bytes of UTF-8"}}
    over = {"usedBy": "é" * 200}  # 200 characters, 400 bytes
    assert refused_for_bytes(rejected, 400, over, too_long)
    # Within the byte limit, another message, another failure, another status: real failures.
    assert not refused_for_bytes(rejected, 400, {"usedBy": "e" * 200}, too_long)
    other = {"error": {"code": "invalid_request", "message": "count must be an integer"}}
    assert not refused_for_bytes(rejected, 400, {**over, "count": 2.0}, other)
    accepted = AcceptedNegativeData(operation="POST /codes", message="", status_code=201, expected_statuses=["400"])
    assert not refused_for_bytes(accepted, 400, over, too_long)
    assert not refused_for_bytes(rejected, 422, over, too_long)
