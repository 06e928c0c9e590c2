"""`python -m benchmarks [--quick] [--output-dir DIR] [--endpoint-url URL]`: every benchmark, one engine, one run.

Starts DynamoDB Local (unless `--endpoint-url` names an engine), then: correctness of every contender, the
Lambda table, the handler's import breakdown, the hot path, the keyspace fill sweep, refill throughput and
cost. Writes `latest.json`, `latest.md` and PNG plots to the output directory (default `benchmarks/results/`,
whose run also refreshes the results section of `benchmarks/README.md`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.cost import cost_table
from benchmarks.environment import (
    TABLE_NAME,
    BenchEnvironment,
    bench_environment,
    machine,
    memory_configured,
    prepare_table,
    summary,
)
from benchmarks.fill_sweep import run_fill_sweep
from benchmarks.hot_path import run_hot_path
from benchmarks.imports import import_breakdown
from benchmarks.lambda_table import check_contenders, run_lambda_table
from benchmarks.refill import run_refill
from benchmarks.report import evaluate_targets, write_outputs
from codepool.config import PoolConfig, load_pools
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
    """Per warm block; ours runs `warm_blocks` of them (each in its own cold-started process), the others one."""
    warm_blocks: int
    import_runs: int
    default_pool: int
    hot_pool: int
    hot_levels: dict[int, int]
    """Concurrent workers -> claims each, per repetition."""
    hot_repetitions: int
    fill_digits: int
    fill_pool_codes: int
    fill_on_demand_codes: dict[int, int]
    refill_codes: int
    refill_rounds: int


FULL = Sizes(
    correctness_invocations=20,
    cold_starts=11,
    warm_invocations=100,
    warm_blocks=3,
    import_runs=5,
    default_pool=2_000,
    hot_pool=10_000,
    hot_levels={1: 400, 16: 100, 64: 50},
    hot_repetitions=3,
    fill_digits=6,
    fill_pool_codes=1_000,
    fill_on_demand_codes={0: 400, 50: 300, 90: 200, 99: 60},
    refill_codes=10_000,
    refill_rounds=7,
)
QUICK = Sizes(
    correctness_invocations=5,
    cold_starts=3,
    warm_invocations=8,
    warm_blocks=3,
    import_runs=1,
    default_pool=300,
    hot_pool=1_000,
    hot_levels={1: 20, 16: 4, 64: 2},
    hot_repetitions=3,
    fill_digits=4,
    fill_pool_codes=40,
    fill_on_demand_codes={0: 20, 50: 20, 90: 10, 99: 5},
    refill_codes=1_000,
    refill_rounds=3,
)


def log(message: str) -> None:
    print(f"[benchmarks] {message}", file=sys.stderr, flush=True)


async def run_all(environment: BenchEnvironment, sizes: Sizes, memory_mb: int) -> dict[str, Any]:
    await prepare_table(environment)
    pools = load_pools(environment.pools_file)
    async with Container.open(environment.settings, pools) as container:
        await refill_pool(container.repository, pools["default"], sizes.default_pool)
    issued: list[str] = []

    started = time.perf_counter()
    correctness, codes = await check_contenders(environment, sizes.correctness_invocations)
    issued += codes
    log(f"correctness: {correctness} codes, all unique and recorded ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    table, warm_runs, codes = await run_lambda_table(
        environment, sizes.cold_starts, sizes.warm_invocations, memory_mb, sizes.warm_blocks
    )
    issued += codes
    log(f"Lambda table ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    cold_start = import_breakdown(environment, sizes.import_runs)
    log(f"import breakdown ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    hot_path, codes = await run_hot_path(
        environment, pools["hot"], sizes.hot_levels, sizes.hot_pool, sizes.hot_repetitions
    )
    issued += codes
    hot_path.update(warm_ratios(warm_runs["ours"]))
    log(f"hot path ({time.perf_counter() - started:.0f} s)")

    # Before the fill sweep, which leaves about a million items in the in-memory engine: with them the JVM's
    # heap and collections made raw BatchWriteItem rounds vary from 6,000 to 9,550 items/s within one run.
    started = time.perf_counter()
    refill_template = pools["refill"]
    in_keyspace = issued_in_keyspace(refill_template, issued)
    refill = await run_refill(environment, refill_template, sizes.refill_codes, sizes.refill_rounds, in_keyspace)
    log(f"refill ({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()
    fill_sweep = await run_fill_sweep(environment, sizes.fill_digits, sizes.fill_pool_codes, sizes.fill_on_demand_codes)
    log(f"fill sweep ({time.perf_counter() - started:.0f} s, pre-fill {fill_sweep['prefill_seconds']:.0f} s)")

    return {
        "correctness": {"codes_checked": correctness, "unique_and_recorded": True},
        "lambda_table": table,
        "cold_start": cold_start,
        "warm_runs": warm_runs,
        "hot_path": hot_path,
        "fill_sweep": fill_sweep,
        "refill": refill,
        "cost": cost_table(hot_path, refill, fill_sweep),
    }


def warm_ratios(ours: dict[str, Any]) -> dict[str, Any]:
    """Our warm request ÷ the bare floors run interleaved with it: pooled, and per block (each block a separate
    cold-started process) for the spread."""
    handler_ms, floor_ms, transact_ms = ours["warm_ms"], ours["floor_ms"], ours["transact_floor_ms"]
    median = statistics.median
    by_update = [median(b["warm_ms"]) / median(b["floor_ms"]) for b in ours["blocks"]]
    by_transact = [median(b["warm_ms"]) / median(b["transact_floor_ms"]) for b in ours["blocks"]]
    overhead = [median(b["warm_ms"]) - median(b["transact_floor_ms"]) for b in ours["blocks"]]
    return {
        "warm_ratio": median(handler_ms) / median(floor_ms),
        "warm_ratio_range": [min(by_update), max(by_update)],
        "warm_ratio_blocks": by_update,
        "warm_ratio_transaction": median(by_transact),
        "warm_ratio_transaction_range": [min(by_transact), max(by_transact)],
        "warm_ratio_transaction_blocks": by_transact,
        "warm_ratio_transaction_pooled": median(handler_ms) / median(transact_ms),
        "handler_overhead_ms": median(overhead),
        "handler_overhead_range_ms": [min(overhead), max(overhead)],
        "handler_warm_ms": summary(handler_ms),
        "floor_ms": summary(floor_ms),
        "floor_samples_ms": floor_ms,
        "transact_floor_ms": summary(transact_ms),
        "transact_floor_samples_ms": transact_ms,
        "warm_samples": len(floor_ms),
        "warm_blocks": len(ours["blocks"]),
    }


def issued_in_keyspace(pool: PoolConfig, codes: list[str]) -> int:
    """How many distinct codes issued in this run the pool's format could have drawn (the table is new per run,
    so these are all its issued codes in that keyspace; the fill sweep's numeric codes are not among them)."""
    fmt = pool.format
    return len({fmt.canonical(code) for code in codes if fmt.matches(code)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under a minute); labelled as such")
    parser.add_argument("--output-dir", type=Path, default=RESULTS_DIR, help=f"default: {RESULTS_DIR}")
    parser.add_argument("--endpoint-url", help="an engine that is already running (default: start DynamoDB Local)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    wall_started = time.perf_counter()
    memory_mb, memory_source = memory_configured()
    with bench_environment(args.endpoint_url, f"{TABLE_NAME}-{int(time.time())}") as environment:
        engine_name = environment.engine
        log(f"engine: {engine_name} at {environment.endpoint_url}")
        results = asyncio.run(run_all(environment, sizes, memory_mb))
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
