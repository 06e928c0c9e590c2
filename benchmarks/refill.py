"""Refill throughput: `refill_pool` codes/s against raw `BatchWriteItem` items/s, same client, same run, equal
concurrency.

How many requests the refill has in flight is measured, not assumed: an `InFlightMeter` (botocore's
`before-send` to `response-received`) on the client records the peak of concurrent `BatchWriteItem` (and of
all requests) during an untimed calibration refill, and raw then writes pre-built slot items (25 per request)
with exactly that many `BatchWriteItem` in flight; the timed rounds measure both again (`in_flight`,
`raw_in_flight`). The ratio is everything the refiller adds: generating codes, the never-issued check,
rounds and bookkeeping. Rounds alternate which goes first so drift hurts both alike; each writes into fresh
partitions. `fill_fraction` is the share of the refill pool's keyspace issued when the refill runs (every
code issued in this run that the pool's format could produce, over its keyspace).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import json
import pstats
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.environment import BenchEnvironment
from benchmarks.metering import InFlightMeter, RequestMeter
from codepool.config import PoolConfig
from codepool.dynamodb.keys import slot_key
from codepool.dynamodb.repository import BATCH_WRITE_SIZE, DynamoDBRepository
from codepool.model import Candidate, shard_of
from codepool.refilling import refill_pool
from codepool.repository import WriteReport
from localdev.paths import PROJECT_ROOT


class TimedRepository(DynamoDBRepository):
    """Where a refill's time goes: the never-issued check, the slot writes, and the rest (generation)."""

    check_seconds = 0.0
    write_seconds = 0.0

    async def existing_among(
        self, pool: str, candidates: Sequence[Candidate], *, check_available: bool
    ) -> tuple[set[str], set[str]]:
        started = time.perf_counter()
        try:
            return await super().existing_among(pool, candidates, check_available=check_available)
        finally:
            self.check_seconds += time.perf_counter() - started

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        started = time.perf_counter()
        try:
            return await super().add_available(pool, candidates)
        finally:
            self.write_seconds += time.perf_counter() - started


WRITE = "BatchWriteItem"
CALIBRATION_CODES = 2_000


async def run_refill(
    environment: BenchEnvironment, template: PoolConfig, codes: int, rounds: int, issued: int = 0
) -> dict[str, Any]:
    """`issued`: codes issued so far in this run that the template's format can produce (for the fill fraction)."""
    refill_rates, raw_rates, refill_cpu, raw_cpu, requests, phases = [], [], [], [], [], []
    refill_flight: list[dict[str, Any]] = []
    raw_flight: list[dict[str, Any]] = []
    estimates: list[float] = []
    checked: list[bool] = []
    async with environment.client() as client:
        meter = RequestMeter()
        meter.attach(client)
        flight = InFlightMeter()
        flight.attach(client)
        repository = TimedRepository(client, environment.table_name)
        calibration_pool = PoolConfig(
            "refill-calibration", template.format, target=codes, low_watermark=0, shards=template.shards
        )
        flight.reset()
        await refill_pool(repository, calibration_pool, min(codes, CALIBRATION_CODES))
        calibration = flight.snapshot()
        concurrency = max(1, calibration["max_by_operation"].get(WRITE, 0))
        for number in range(rounds):
            for turn in ("raw", "refill") if number % 2 == 0 else ("refill", "raw"):
                if turn == "raw":
                    flight.reset()
                    rate, cpu = await _raw_batch_writes(
                        client, environment.table_name, template, f"raw{number}", codes, concurrency
                    )
                    raw_flight.append(flight.snapshot())
                    raw_rates.append(rate)
                    raw_cpu.append(cpu)
                    continue
                pool = PoolConfig(
                    f"refill{number}", template.format, target=codes, low_watermark=0, shards=template.shards
                )
                meter.reset()
                flight.reset()
                repository.check_seconds = repository.write_seconds = 0.0
                started, cpu_started = time.perf_counter(), time.process_time()
                summary = await refill_pool(repository, pool, codes)
                elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
                refill_flight.append(flight.snapshot())
                estimates.append(summary.fill_fraction)
                checked.append(summary.checked)
                refill_rates.append(summary.written / elapsed)
                refill_cpu.append(cpu_used / summary.written * 1e6)
                requests.append(meter.snapshot())
                phases.append(
                    {
                        "total_s": elapsed,
                        "check_s": repository.check_seconds,
                        "write_s": repository.write_seconds,
                        "other_s": elapsed - repository.check_seconds - repository.write_seconds,
                        "write_only_codes_per_s": summary.written / max(repository.write_seconds, 1e-9),
                    }
                )
    ratios = [ours / raw for ours, raw in zip(refill_rates, raw_rates, strict=True)]
    keyspace = template.format.keyspace
    return {
        "codes_per_round": codes,
        "rounds": rounds,
        "concurrency": concurrency,
        "in_flight": max(f["max_by_operation"].get(WRITE, 0) for f in refill_flight),
        "raw_in_flight": max(f["max_by_operation"].get(WRITE, 0) for f in raw_flight),
        "in_flight_calibration": calibration["max_by_operation"].get(WRITE, 0),
        "in_flight_all_requests": max(f["max_in_flight"] for f in refill_flight),
        "in_flight_by_operation": _peaks(refill_flight),
        "mean_in_flight": statistics.median(f["mean_by_operation"].get(WRITE, 0.0) for f in refill_flight),
        "raw_mean_in_flight": statistics.median(f["mean_by_operation"].get(WRITE, 0.0) for f in raw_flight),
        "mean_in_flight_all_requests": statistics.median(f["mean_in_flight"] for f in refill_flight),
        "fill_fraction": issued / keyspace,
        "issued_in_keyspace": issued,
        "refill_estimated_fill_fraction": max(estimates),
        "refill_checked_rounds": sum(checked),
        "keyspace": keyspace,
        "codes_per_s": statistics.median(refill_rates),
        "raw_items_per_s": statistics.median(raw_rates),
        "ratio": statistics.median(ratios),
        "ratio_range": [min(ratios), max(ratios)],
        "ratio_rounds": ratios,
        "codes_per_s_rounds": refill_rates,
        "raw_items_per_s_rounds": raw_rates,
        "cpu_us_per_code": statistics.median(refill_cpu),
        "raw_cpu_us_per_item": statistics.median(raw_cpu),
        "phases_last_round": phases[-1],
        "requests_per_code": statistics.median(r["requests"] / codes for r in requests),
        "by_operation": requests[-1]["by_operation"],
        "wru_per_code": statistics.median(r["priced_wru"] / codes for r in requests),
        "rru_per_code": statistics.median(r["priced_rru"] / codes for r in requests),
    }


def _peaks(snapshots: list[dict[str, Any]]) -> dict[str, int]:
    peaks: dict[str, int] = {}
    for snapshot in snapshots:
        for op, n in snapshot["max_by_operation"].items():
            peaks[op] = max(peaks.get(op, 0), n)
    return peaks


async def _raw_batch_writes(
    client: Any, table: str, template: PoolConfig, pool: str, count: int, concurrency: int
) -> tuple[float, float]:
    """(items/s, client CPU µs per item) of plain BatchWriteItem calls of pre-built slot items."""
    fmt = template.format
    keys = {fmt.canonical(fmt.generate()) for _ in range(count)}
    items = [{**slot_key(pool, shard_of(key, template.shards), key), "code": {"S": key}} for key in keys]
    batches = [items[i : i + BATCH_WRITE_SIZE] for i in range(0, len(items), BATCH_WRITE_SIZE)]
    semaphore = asyncio.Semaphore(concurrency)

    async def write(batch: list[dict[str, Any]]) -> None:
        request: Any = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        async with semaphore:
            while request:
                response = await client.batch_write_item(RequestItems=request)
                request = response.get("UnprocessedItems") or None

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(write(batch) for batch in batches))
    elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
    return len(items) / elapsed, cpu_used / len(items) * 1e6


def _profile_by_package(profile: cProfile.Profile, codes: int, top: int) -> list[tuple[str, float]]:
    """Own time per code (µs) by where it is spent: a site-package, a stdlib package, a module of ours (by
    function), or a builtin."""
    spent: collections.Counter[str] = collections.Counter()
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    for (path, _, function), (_, _, own, *_) in stats.items():
        if "site-packages/" in path:
            place = path.split("site-packages/")[1].split("/")[0]
        elif path.startswith(str(PROJECT_ROOT)):
            place = f"{Path(path).relative_to(PROJECT_ROOT)}:{function}"
        elif path == "~" or path.startswith("<"):
            place = function if path == "~" else path
        else:  # the standard library: its package, or its module if it is a top-level one
            folder = Path(path).parent
            place = "stdlib " + (Path(path).stem if folder.name.startswith("python") else folder.name)
        spent[place] += own
    return [(place, seconds / codes * 1e6) for place, seconds in spent.most_common(top)]


async def _standalone(codes: int, rounds: int, profile: bool) -> None:
    """The refill benchmark alone, on a fresh DynamoDB Local, with nothing else in the process; with `profile`,
    one more refill and one more raw round under cProfile, their own time per code by package."""
    from benchmarks.environment import bench_environment, prepare_table
    from codepool.config import load_pools

    with bench_environment(None, "UniqueCodesRefillBench") as environment:
        await prepare_table(environment)
        template = load_pools(environment.pools_file)["refill"]
        result = await run_refill(environment, template, codes, rounds)
        keys = ("ratio", "ratio_rounds", "codes_per_s", "raw_items_per_s", "mean_in_flight", "raw_mean_in_flight")
        print(json.dumps({key: result[key] for key in (*keys, "cpu_us_per_code", "raw_cpu_us_per_item")}))
        if profile:
            await _profiles(environment, template, codes)


async def _profiles(environment: BenchEnvironment, template: PoolConfig, codes: int) -> None:
    async with environment.client() as client:
        repository = DynamoDBRepository(client, environment.table_name)
        for who in ("refill", "raw"):
            profile = cProfile.Profile()
            profile.enable()
            if who == "refill":
                pool = PoolConfig("profiled", template.format, target=codes, low_watermark=0, shards=template.shards)
                await refill_pool(repository, pool, codes)
            else:  # item building included, unlike the timed rounds: what raw does per item end to end
                await _raw_batch_writes(client, environment.table_name, template, "profiled-raw", codes, 8)
            profile.disable()
            print(f"{who}: own time per code under cProfile, µs")
            for place, micros in _profile_by_package(profile, codes, 25):
                print(f"  {micros:7.2f}  {place}")


def main() -> None:
    parser = argparse.ArgumentParser(description="`python -m benchmarks.refill`: the refill benchmark alone.")
    parser.add_argument("--codes", type=int, default=10_000, help="codes per round (default 10,000)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (default 7)")
    parser.add_argument("--profile", action="store_true", help="then one refill and one raw round under cProfile")
    args = parser.parse_args()
    asyncio.run(_standalone(args.codes, args.rounds, args.profile))


if __name__ == "__main__":
    main()
