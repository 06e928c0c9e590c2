"""Invariant 1 across pools through `unique-codes serve` on DynamoDB Local: a pools file whose pools would key one
text twice is refused at start, naming both pools; two pools that key shared texts alike issue each text once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from localdev.engines import free_port
from tests.integration.serving import http, serving

pytestmark = pytest.mark.integration

LOWER_AND_MIXED = """
[pools.lower]
alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
length = 2
target = 100

[pools.mixed]
alphabet = "base62"
length = 2
target = 100
"""
VIP_AND_BASE62 = """
[pools.vip]
alphabet = "numeric"
prefix = "a"
length = 1
target = 5

[pools.mixed]
alphabet = "base62"
length = 2
target = 100
"""
LOWER_AND_UPPER = """
[pools.lower]
alphabet = "abcdef"
length = 2
target = 18
shards = 2

[pools.upper]
alphabet = "ABCDEF"
length = 2
target = 18
shards = 2
"""
EXHAUSTION_SECONDS = 90


@pytest.mark.parametrize(
    ("pools_toml", "named"),
    [(LOWER_AND_MIXED, ("lower", "mixed")), (VIP_AND_BASE62, ("vip", "mixed"))],
    ids=["lower-and-base62", "numeric-prefix-and-base62"],
)
def test_serve_refuses_pools_that_would_key_one_text_twice(
    pools_toml: str, named: tuple[str, str], tmp_path: Path
) -> None:
    pools = tmp_path / "pools.toml"
    pools.write_text(pools_toml)
    command = [sys.executable, "-m", "localdev", "serve", "--port", str(free_port()),
               "--engine", "dynamodb-local", "--pools-file", str(pools)]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode != 0
    output = finished.stdout + finished.stderr
    assert "can issue the same code under two keys" in output
    assert all(f"'{name}'" in output for name in named)


def test_pools_keying_texts_alike_issue_each_text_once_on_dynamodb_local(tmp_path: Path) -> None:
    """`abcdef` and `ABCDEF` pools key `ab` and `AB` alike: issued dry together, their 36 texts are issued once."""
    issued: dict[str, str] = {}
    with serving("dynamodb-local", LOWER_AND_UPPER, tmp_path, args=["--refill-interval", "0.5"]) as url:
        exhausted: set[str] = set()
        give_up = time.monotonic() + EXHAUSTION_SECONDS
        while exhausted != {"lower", "upper"} and time.monotonic() < give_up:
            for pool in {"lower", "upper"} - exhausted:
                status, _, body = http(f"{url}/codes", "POST", f'{{"pool": "{pool}"}}'.encode())
                if status == 201:
                    assert body["code"].upper() not in issued, (body, issued)
                    issued[body["code"].upper()] = pool
                elif body["error"]["code"] == "pool_exhausted":
                    exhausted.add(pool)
                else:
                    assert (status, body["error"]["code"]) in {(503, "pool_empty"), (503, "claim_contention")}, body
                    time.sleep(0.1)
        assert exhausted == {"lower", "upper"}, f"not exhausted within {EXHAUSTION_SECONDS} s: {sorted(issued)}"
        assert len(issued) == 36
        assert {issued[text] for text in issued} == {"lower", "upper"}
        for text, pool in issued.items():
            status, _, record = http(f"{url}/codes/{text.lower()}")
            assert (status, record["pool"], record["code"].upper()) == (200, pool, text)
