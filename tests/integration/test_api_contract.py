"""A Python client generated from `/openapi.json` by openapi-python-client, as a user makes it: type-checked
against the calls a program makes (`generated_client_calls.py`), then run against `unique-codes serve` on DynamoDB
Local. The schemathesis CLI's run is `test_api_fuzz.py`.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.serving import http, serving

BIN = Path(sys.executable).parent
CLIENT_PACKAGE = "unique_codes_client"
DRIVER = Path(__file__).with_name("generated_client_calls.py")
POOLS = (
    '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 100\n\n'
    '[pools.orders]\nalphabet = "numeric"\nlength = 6\nprefix = "O-"\npattern = "###-###"\ntarget = 100\n'
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving("dynamodb-local", POOLS, tmp_path_factory.mktemp("contract")) as url:
        yield url


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **env}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=300, check=False)


def generate_client(url: str, folder: Path) -> None:
    """The client as a user makes it: openapi-python-client on the served document (ruff, which it runs on
    its output, is on PATH)."""
    status, _, document = http(f"{url}/openapi.json")
    assert status == 200
    (folder / "openapi.json").write_text(json.dumps(document))
    generated = run(
        [str(BIN / "openapi-python-client"), "generate", "--path", "openapi.json", "--meta", "none",
         "--output-path", CLIENT_PACKAGE],
        folder,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    # It generates a client even from a document it cannot read all of, and says so.
    assert "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr


def test_a_generated_python_client_issues_replays_looks_up_and_reads_statistics(served: str, tmp_path: Path) -> None:
    generate_client(served, tmp_path)
    # Every field the calls use is a typed attribute of the generated models: no `Any`, no dictionary look-ups.
    # The generated modules are read for their types, not judged (`silent`): openapi-python-client's own code
    # has a few strict-mode errors of its own (`Self` in `from_dict`, `*args` to `__exit__`).
    checked = run(
        [sys.executable, "-m", "mypy", "--strict", "--disallow-any-expr", "--follow-imports", "silent",
         "--cache-dir", str(tmp_path / ".mypy_cache"), str(DRIVER)],
        tmp_path,
        MYPYPATH=str(tmp_path),
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

    sys.path.insert(0, str(tmp_path))
    try:
        calls = importlib.import_module("tests.integration.generated_client_calls")
        seen = calls.exercise(served, idempotency_key="order-42-attempt")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]
        sys.modules.pop("tests.integration.generated_client_calls", None)

    assert (seen.first.pool, seen.first.used_by, seen.first.reference) == ("orders", "alice@example.com", "order-42")
    assert seen.replayed == seen.first
    assert seen.replayed_header == "true"
    assert seen.reused_key == (422, "idempotency_key_reused")
    assert len({code.code for code in seen.several}) == 3
    assert seen.first.code not in {code.code for code in seen.several}
    assert seen.found == seen.first
    assert abs(seen.issued_at.timestamp() - time.time()) < 300
    assert seen.not_found == (404, "code_not_found")
    assert seen.unknown_pool == (404, "pool_not_found")
    assert seen.pools == ["default", "orders"]

    stats = seen.stats
    assert (stats.name, stats.pool, stats.target, stats.shards) == ("orders", "orders", 100, 4)
    assert stats.issued == 4
    assert sum(stats.available_by_shard) == stats.available
    assert 0 < stats.available <= stats.target
    assert stats.keyspace == 1_000_000
    assert stats.exhausted is False
    assert stats.swept is False
    assert stats.below_low_watermark == (stats.available < stats.low_watermark)
    # A forecast needs an issue rate (none before a second snapshot of the pool, or 0).
    assert (stats.forecast.pool_dry_in_seconds is None) == (not stats.issue_rate_per_hour)
    assert (stats.forecast.keyspace_exhausted_in_seconds is None) == (not stats.issue_rate_per_hour)
