"""The demo's Lambda table, emulated: init, five durations, billed duration, memory, per contender.

Every cold start is a fresh interpreter (`benchmarks.lambda_emulator`); contenders take turns within each
round, so a noisy neighbour hurts all of them alike. Correctness comes first: a separate run per contender
must return unique codes that are all recorded, or nothing is timed.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks.contenders import HANDLERS
from benchmarks.environment import EVENT_FILE, BenchEnvironment, summary, verify_issued
from benchmarks.lambda_emulator import PROTOCOL_PREFIX
from localdev.paths import PROJECT_ROOT

INVOCATIONS = 5


def spawn(environment: BenchEnvironment, contender: str, *options: str) -> dict[str, Any]:
    """One cold start; init is measured from the spawn to the handler being ready, on the monotonic clock."""
    command = [sys.executable, "-m", "benchmarks.lambda_emulator", contender, str(EVENT_FILE), *options]
    spawned = time.monotonic()
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=environment.child_environment(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(PROTOCOL_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{contender} emulator failed ({done.returncode}): {done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(lines[-1].removeprefix(PROTOCOL_PREFIX))
    report["init_ms"] = (report["ready"] - spawned) * 1000
    report["interpreter_ms"] = (report["started"] - spawned) * 1000
    return report


async def check_contenders(environment: BenchEnvironment, invocations: int) -> tuple[dict[str, int], list[str]]:
    """Before any timing: each contender's codes are unique (also across contenders) and recorded.

    (codes issued by contender, every code issued)."""
    issued: dict[str, int] = {}
    every_code: list[str] = []
    async with environment.client() as client:
        for contender in HANDLERS:
            report = spawn(environment, contender, "--invocations", str(invocations))
            await verify_issued(client, environment.table_name, report["codes"], f"correctness of {contender}")
            issued[contender] = len(report["codes"])
            every_code += report["codes"]
        await verify_issued(client, environment.table_name, every_code, "correctness across contenders")
    return issued, every_code


async def run_lambda_table(
    environment: BenchEnvironment, cold_starts: int, warm: int, memory_mb: int, warm_blocks: int = 1
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the table by contender, the warm runs by contender, every code issued).

    Each contender's last cold start goes on with `warm` further invocations. Ours does so in each of its last
    `warm_blocks` cold starts (separate processes, so each block is a repetition), interleaving every warm
    invocation with a bare `UpdateItem` and a bare claim-shaped `TransactWriteItems` on the same client.
    """
    runs: dict[str, list[dict[str, Any]]] = {contender: [] for contender in HANDLERS}
    warm_runs: dict[str, dict[str, Any]] = {}
    blocks: list[dict[str, list[float]]] = []
    for round_number in range(cold_starts):
        left = cold_starts - round_number
        order = list(HANDLERS)[round_number % len(HANDLERS) :] + list(HANDLERS)[: round_number % len(HANDLERS)]
        for contender in order:
            options = ["--invocations", str(INVOCATIONS), "--memory-mb", str(memory_mb)]
            floor = contender == "ours" and left <= warm_blocks
            if warm and (left == 1 or floor):
                options += ["--warm", str(warm)] + (["--floor"] if floor else [])
            report = spawn(environment, contender, *options)
            runs[contender].append(report)
            if floor and warm:
                blocks.append({key: report[key] for key in ("warm_ms", "floor_ms", "transact_floor_ms")})
            elif left == 1 and warm:
                warm_runs[contender] = {"warm_ms": report["warm_ms"]}
    if blocks:
        warm_runs["ours"] = {
            key: [value for block in blocks for value in block[key]]
            for key in ("warm_ms", "floor_ms", "transact_floor_ms")
        }
        warm_runs["ours"]["blocks"] = blocks
    codes = [code for reports in runs.values() for report in reports for code in report["codes"]]
    async with environment.client() as client:
        await verify_issued(client, environment.table_name, codes, "Lambda table runs")
    table = {contender: _row(reports, memory_mb) for contender, reports in runs.items()}
    return table, warm_runs, codes


def _row(reports: list[dict[str, Any]], memory_mb: int) -> dict[str, Any]:
    inits = [r["init_ms"] for r in reports]
    by_invocation = list(zip(*(r["durations_ms"] for r in reports), strict=True))
    billed = [[math.ceil(d) for d in column] for column in by_invocation]
    memory = [r["max_rss_kb"] / 1024 for r in reports]
    cold = [r["init_ms"] + r["durations_ms"][0] for r in reports]
    return {
        "cold_starts": len(reports),
        "init_ms": statistics.median(inits),
        "init_range_ms": [min(inits), max(inits)],
        "interpreter_start_ms": statistics.median(r["interpreter_ms"] for r in reports),
        "import_ms": statistics.median(r["import_ms"] for r in reports),
        "duration_ms": [statistics.median(column) for column in by_invocation],
        "duration_range_ms": [[min(column), max(column)] for column in by_invocation],
        "billed_ms": [statistics.median(column) for column in billed],
        "cold_request_ms": statistics.median(cold),
        "cold_request_range_ms": [min(cold), max(cold)],
        "memory_configured_mb": memory_mb,
        "max_memory_mb": statistics.median(memory),
        "max_memory_range_mb": [min(memory), max(memory)],
        "warm_ms": summary([d for r in reports for d in r["durations_ms"][1:]]),
    }
