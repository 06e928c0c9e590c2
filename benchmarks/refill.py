"""Refill throughput: `refill_pool` codes/s against raw `BatchWriteItem` items/s, same client, same run.

Raw writes the same slot items (pre-built, 25 per request, as many requests in flight as the repository
uses), so the ratio is everything the refiller adds: generating codes, the `BatchGetItem` check that a code
was never issued, rounds and bookkeeping. Rounds alternate raw and refill so drift hurts both alike; each
round writes into fresh partitions.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.environment import BenchEnvironment
from benchmarks.metering import RequestMeter
from codepool.config import PoolConfig
from codepool.dynamodb.keys import slot_key
from codepool.dynamodb.repository import BATCH_WRITE_SIZE, DynamoDBRepository
from codepool.model import Candidate, shard_of
from codepool.refilling import REQUESTS_IN_FLIGHT, refill_pool
from codepool.repository import WriteReport


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


async def run_refill(environment: BenchEnvironment, template: PoolConfig, codes: int, rounds: int) -> dict[str, Any]:
    refill_rates, raw_rates, refill_cpu, raw_cpu, requests, phases = [], [], [], [], [], []
    async with environment.client() as client:
        meter = RequestMeter()
        meter.attach(client)
        repository = TimedRepository(client, environment.table_name)
        concurrency = REQUESTS_IN_FLIGHT
        for number in range(rounds):
            rate, cpu = await _raw_batch_writes(
                client, environment.table_name, template, f"raw{number}", codes, concurrency
            )
            raw_rates.append(rate)
            raw_cpu.append(cpu)
            pool = PoolConfig(f"refill{number}", template.format, target=codes, low_watermark=0, shards=template.shards)
            meter.reset()
            repository.check_seconds = repository.write_seconds = 0.0
            started, cpu_started = time.perf_counter(), time.process_time()
            summary = await refill_pool(repository, pool, codes)
            elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
            refill_rates.append(summary.written / elapsed)
            refill_cpu.append(cpu_used / summary.written * 1e6)
            requests.append(meter.snapshot())
            phases.append(
                {
                    "total_s": elapsed,
                    "check_s": repository.check_seconds,
                    "write_s": repository.write_seconds,
                    "other_s": elapsed - repository.check_seconds - repository.write_seconds,
                    "write_only_codes_per_s": summary.written / repository.write_seconds,
                }
            )
    codes_per_s, raw_items_per_s = statistics.median(refill_rates), statistics.median(raw_rates)
    return {
        "codes_per_round": codes,
        "rounds": rounds,
        "concurrency": concurrency,
        "codes_per_s": codes_per_s,
        "raw_items_per_s": raw_items_per_s,
        "ratio": codes_per_s / raw_items_per_s,
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
