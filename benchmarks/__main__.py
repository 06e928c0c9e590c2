"""`python -m benchmarks [--quick] [--output-dir DIR] [--endpoint-url URL]`: every benchmark, one engine, one run.

Starts DynamoDB Local (unless `--endpoint-url` names an engine), then: correctness of every contender, the
Lambda table, the hot path, the keyspace fill sweep, refill throughput and cost. Writes `latest.json`,
`latest.md` and PNG plots to the output directory (default `benchmarks/results/`, whose run also refreshes
the results section of `benchmarks/README.md`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.cost import cost_table
from benchmarks.environment import (
    TABLE_NAME,
    BenchEnvironment,
    machine,
    memory_configured,
    prepare_table,
    start_engine,
    summary,
)
from benchmarks.fill_sweep import run_fill_sweep
from benchmarks.hot_path import run_hot_path
from benchmarks.lambda_table import check_contenders, run_lambda_table
from benchmarks.refill import run_refill
from benchmarks.report import evaluate_targets, write_outputs
from codepool.config import load_pools
from codepool.refilling import refill_pool
from codepool.runtime import Container
from localdev.paths import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
README = PROJECT_ROOT / "benchmarks" / "README.md"


@dataclass(frozen=True)
class Sizes:
    correctness_invocations: int
    cold_starts: int
    warm_invocations: int
    default_pool: int
    hot_pool: int
    hot_levels: dict[int, int]
    """Concurrent workers -> claims each."""
    fill_digits: int
    fill_pool_codes: int
    fill_on_demand_codes: dict[int, int]
    refill_codes: int
    refill_rounds: int


FULL = Sizes(
    correctness_invocations=20,
    cold_starts=5,
    warm_invocations=200,
    default_pool=2_000,
    hot_pool=10_000,
    hot_levels={1: 400, 16: 100, 64: 50},
    fill_digits=6,
    fill_pool_codes=1_000,
    fill_on_demand_codes={0: 400, 50: 300, 90: 200, 99: 60},
    refill_codes=10_000,
    refill_rounds=3,
)
QUICK = Sizes(
    correctness_invocations=5,
    cold_starts=2,
    warm_invocations=20,
    default_pool=300,
    hot_pool=1_000,
    hot_levels={1: 40, 16: 6, 64: 3},
    fill_digits=4,
    fill_pool_codes=40,
    fill_on_demand_codes={0: 20, 50: 20, 90: 10, 99: 5},
    refill_codes=1_000,
    refill_rounds=1,
)


def log(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


async def run_all(environment: BenchEnvironment, sizes: Sizes, memory_mb: int) -> dict[str, Any]:
    await prepare_table(environment)
    pools = load_pools(environment.pools_file)
    async with Container.open(environment.settings, pools) as container:
        await refill_pool(container.repository, pools["default"], sizes.default_pool)

    started = time.perf_counter()
    correctness = await check_contenders(environment, sizes.correctness_invocations)
    log(f"correctness: {correctness} codes, all unique and recorded ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    table, warm_runs = await run_lambda_table(environment, sizes.cold_starts, sizes.warm_invocations, memory_mb)
    log(f"Lambda table ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    hot_path = await run_hot_path(environment, pools["hot"], sizes.hot_levels, sizes.hot_pool)
    handler_ms, floor_ms = warm_runs["ours"]["warm_ms"], warm_runs["ours"]["floor_ms"]
    hot_path["warm_ratio"] = statistics.median(handler_ms) / statistics.median(floor_ms)
    hot_path["handler_warm_ms"] = summary(handler_ms)
    hot_path["floor_ms"] = summary(floor_ms)
    hot_path["floor_samples_ms"] = floor_ms
    hot_path["transact_floor_ms"] = summary(warm_runs["ours"]["transact_floor_ms"])
    hot_path["warm_samples"] = len(floor_ms)
    log(f"hot path ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    fill_sweep = await run_fill_sweep(environment, sizes.fill_digits, sizes.fill_pool_codes, sizes.fill_on_demand_codes)
    log(f"fill sweep ({time.perf_counter() - started:.0f} s, pre-fill {fill_sweep['prefill_seconds']:.0f} s)")

    started = time.perf_counter()
    refill = await run_refill(environment, pools["refill"], sizes.refill_codes, sizes.refill_rounds)
    log(f"refill ({time.perf_counter() - started:.0f} s)")

    return {
        "correctness": {"codes_checked": correctness, "unique_and_recorded": True},
        "lambda_table": table,
        "warm_runs": warm_runs,
        "hot_path": hot_path,
        "fill_sweep": fill_sweep,
        "refill": refill,
        "cost": cost_table(hot_path, refill, fill_sweep),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under a minute); labelled as such")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR, help=f"default: {RESULTS_DIR}")
    parser.add_argument("--endpoint-url", help="an engine that is already running (default: start DynamoDB Local)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    wall_started = time.perf_counter()
    memory_mb, memory_source = memory_configured()
    endpoint_url, engine_name, engine = start_engine(args.endpoint_url)
    log(f"engine: {engine_name} at {endpoint_url}")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            pools_file = Path(scratch) / "pools.toml"
            from benchmarks.environment import POOLS_TOML

            pools_file.write_text(POOLS_TOML, encoding="utf-8")
            table_name = f"{TABLE_NAME}-{int(time.time())}"
            environment = BenchEnvironment(endpoint_url, engine_name, table_name, pools_file)
            results = asyncio.run(run_all(environment, sizes, memory_mb))
    finally:
        if engine is not None:
            engine.stop()
    results["meta"] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks" + (" --quick" if args.quick else ""),
        "quick": args.quick,
        "engine": engine_name,
        "memory_configured_mb": memory_mb,
        "memory_source": memory_source,
        "machine": machine(),
        "sizes": {
            k: {str(n): v for n, v in val.items()} if isinstance(val, dict) else val for k, val in vars(sizes).items()
        },
        "wall_seconds": time.perf_counter() - wall_started,
    }
    results["targets"] = evaluate_targets(results)
    output_dir = args.output_dir.resolve()
    write_outputs(results, output_dir, README if output_dir == RESULTS_DIR.resolve() else None)
    for target in results["targets"]:
        log(f"{'met   ' if target['met'] else 'MISSED'} {target['target']}: {target['figure']}")
    log(f"wrote {output_dir} in {results['meta']['wall_seconds']:.0f} s")


if __name__ == "__main__":
    main()
