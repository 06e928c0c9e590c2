"""Hot-path efficiency: requests and request units per issued code at 1, 16 and 64 concurrent warm containers,
and throughput against the engine.

Each worker is one container: its own aiobotocore client and its own `CandidatePrefetcher`, claiming codes in
a closed loop through `issue_codes`. A worker's first claim (its cold invocation, with the first prefetch) is
not counted; everything after it is, SDK retries, lost races and re-prefetches included.

Throughput ratio: in repetitions that alternate with ours, the same workers (same clients, same closed loop)
send bare two-item `TransactWriteItems` of our claim's shape (delete a slot on `attribute_exists(pk)`, put an
issued-code record on `attribute_not_exists(pk)`, with a client request token) on slots written for them
beforehand, untimed. Our codes/s ÷ their transactions/s is what our claim path costs beyond the engine's own
price of the write. The pool is topped up to its size (untimed) before each of our repetitions.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmarks.environment import BenchEnvironment, summary, verify_issued
from benchmarks.metering import RequestMeter
from codepool.config import PoolConfig
from codepool.dynamodb.items import record_item
from codepool.dynamodb.keys import slot_key
from codepool.issuing import issue_codes
from codepool.model import IssuedCode, IssueRequest, utc_timestamp
from codepool.refilling import refill_pool
from codepool.runtime import Container

if TYPE_CHECKING:
    import aioboto3


@dataclass
class Worker:
    container: Container
    codes: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    async def claim(self, pool: str, count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            result = await issue_codes(self.container.components, IssueRequest(pool=pool))
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.codes.append(result.codes[0].code)


async def open_workers(
    stack: AsyncExitStack,
    environment: BenchEnvironment,
    pools: dict[str, PoolConfig],
    concurrency: int,
    meter: RequestMeter,
    session: aioboto3.Session,
) -> list[Worker]:
    """`concurrency` warm-to-be containers, each with a metered client of its own, open for as long as `stack`."""
    workers = []
    for _ in range(concurrency):
        container = await stack.enter_async_context(Container.open(environment.settings, pools, session=session))
        meter.attach(container.client)
        workers.append(Worker(container))
    return workers


async def measure_claims(
    environment: BenchEnvironment, pool: PoolConfig, concurrency: int, per_worker: int
) -> dict[str, Any]:
    """Open `concurrency` containers, warm each with one claim, then count `per_worker` claims each."""
    pools = {pool.name: pool}
    meter = RequestMeter()
    session = environment.shared_session()
    async with AsyncExitStack() as stack:
        workers = await open_workers(stack, environment, pools, concurrency, meter, session)
        await asyncio.gather(*(worker.claim(pool.name, 1) for worker in workers))
        meter.reset()
        for worker in workers:
            worker.latencies_ms.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker.claim(pool.name, per_worker) for worker in workers))
        elapsed = time.perf_counter() - started
        usage = meter.snapshot()  # before verifying, which reads through a metered client
        codes = [code for worker in workers for code in worker.codes]
        await verify_issued(workers[0].container.client, environment.table_name, codes, f"{pool.name} c{concurrency}")
    measured = concurrency * per_worker
    latencies = sorted(latency for worker in workers for latency in worker.latencies_ms)
    return {
        "workers": concurrency,
        "codes": measured,
        "requests": usage["requests"],
        "requests_per_code": usage["requests"] / measured,
        "by_operation_per_code": {op: n / measured for op, n in usage["by_operation"].items()},
        "wru_per_code": usage["priced_wru"] / measured,
        "rru_per_code": usage["priced_rru"] / measured,
        "engine_wru_per_code": usage["engine_wru"] / measured,
        "engine_rru_per_code": usage["engine_rru"] / measured,
        "codes_per_s": measured / elapsed,
        "issued_codes": codes,
        "latency_ms": {
            **summary(latencies),
            "p90": latencies[int(0.9 * (len(latencies) - 1))],
            "p99": latencies[int(0.99 * (len(latencies) - 1))],
        },
    }


BARE_POOL = "bench-bare"
"""The slots the bare transactions delete: a pool no configuration names, keys no format produces (`~`)."""


SUB_BLOCKS = 5
"""Alternations of ours and bare within one repetition: on a machine shared with other jobs, load drifts over
seconds, and short alternating blocks expose both sides to the same drift."""


@dataclass
class Side:
    """One side of the throughput comparison: its summed time, CPU and count over a repetition's blocks."""

    count: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0

    async def timed(self, work: Any, count: int) -> None:
        started, cpu_started = time.perf_counter(), time.process_time()
        await work
        self.elapsed += time.perf_counter() - started
        self.cpu += time.process_time() - cpu_started
        self.count += count


async def _write_bare_slots(
    environment: BenchEnvironment, workers: list[Worker], shards: int, per_worker: int, label: str
) -> list[list[tuple[str, Any]]]:
    """Per worker, `per_worker` (key, slot key) for bare transactions, the slots written now (untimed)."""
    own = [
        [
            (key, slot_key(BARE_POOL, n % shards, key))
            for n, key in enumerate(f"~BARE-{label}-{w:03d}-{n:05d}" for n in range(per_worker))
        ]
        for w in range(len(workers))
    ]
    flat = [{"PutRequest": {"Item": {**slot, "code": {"S": "~"}}}} for mine in own for _, slot in mine]
    client = workers[0].container.client
    for start in range(0, len(flat), 25):
        request: Any = {environment.table_name: flat[start : start + 25]}
        while request:
            request = (await client.batch_write_item(RequestItems=request)).get("UnprocessedItems") or None
    return own


async def _bare_transactions(
    table: str, workers: list[Worker], work: list[list[tuple[str, Any]]], latencies: list[float]
) -> None:
    """Each worker sends one bare claim-shaped transaction per (key, slot) of its share, in a closed loop."""

    async def run(worker: Worker, share: list[tuple[str, Any]]) -> None:
        client = worker.container.client
        for key, slot in share:
            began = time.perf_counter()
            # Built inside the timed loop, as a claim builds its actions.
            record = IssuedCode(code=key, pool=BARE_POOL, issued_at=utc_timestamp(time.time()))
            actions: Any = [
                {"Delete": {"TableName": table, "Key": slot, "ConditionExpression": "attribute_exists(pk)"}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": record_item(key, record),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
            await client.transact_write_items(TransactItems=actions, ClientRequestToken=uuid.uuid4().hex)
            latencies.append((time.perf_counter() - began) * 1000)

    await asyncio.gather(*(run(worker, share) for worker, share in zip(workers, work, strict=True)))


async def measure_level(
    environment: BenchEnvironment, pool: PoolConfig, concurrency: int, per_worker: int, pool_size: int, reps: int
) -> dict[str, Any]:
    """`reps` repetitions, each of our `per_worker` claims per worker and as many bare transactions per worker,
    in up to SUB_BLOCKS alternating blocks (which side goes first alternates too). A repetition's rate per side
    is its codes over its summed block times; requests and units are counted over our claims only."""
    pools = {pool.name: pool}
    meter = RequestMeter()
    session = environment.shared_session()
    ours_rates: list[float] = []
    bare_rates: list[float] = []
    ours_cpu: list[float] = []
    bare_cpu: list[float] = []
    bare_latencies: list[float] = []
    usage_total: dict[str, Any] = {"requests": 0, "by_operation": {}, **dict.fromkeys(UNIT_KEYS, 0.0)}
    blocks = max(1, min(SUB_BLOCKS, per_worker))
    sizes = [per_worker // blocks + (b < per_worker % blocks) for b in range(blocks)]
    async with AsyncExitStack() as stack:
        workers = await open_workers(stack, environment, pools, concurrency, meter, session)
        await refill_pool(workers[0].container.repository, pool, pool_size)
        await asyncio.gather(*(worker.claim(pool.name, 1) for worker in workers))
        for worker in workers:
            worker.latencies_ms.clear()
        for rep in range(reps):
            await refill_pool(workers[0].container.repository, pool, pool_size)
            bare_work = await _write_bare_slots(environment, workers, pool.shards, per_worker, f"c{concurrency}r{rep}")
            ours, bare = Side(), Side()
            taken = 0
            for block, size in enumerate(sizes):
                for turn in ("bare", "ours") if (rep + block) % 2 == 0 else ("ours", "bare"):
                    if turn == "bare":
                        share = [mine[taken : taken + size] for mine in bare_work]
                        await bare.timed(
                            _bare_transactions(environment.table_name, workers, share, bare_latencies),
                            concurrency * size,
                        )
                        continue
                    meter.reset()
                    await ours.timed(
                        asyncio.gather(*(worker.claim(pool.name, size) for worker in workers)), concurrency * size
                    )
                    usage = meter.snapshot()
                    usage_total["requests"] += usage["requests"]
                    for op, n in usage["by_operation"].items():
                        usage_total["by_operation"][op] = usage_total["by_operation"].get(op, 0) + n
                    for key in UNIT_KEYS:
                        usage_total[key] += usage[key]
                taken += size
            ours_rates.append(ours.count / ours.elapsed)
            bare_rates.append(bare.count / bare.elapsed)
            ours_cpu.append(ours.cpu / ours.count * 1e6)
            bare_cpu.append(bare.cpu / bare.count * 1e6)
        codes = [code for worker in workers for code in worker.codes]
        await verify_issued(workers[0].container.client, environment.table_name, codes, f"{pool.name} c{concurrency}")
    measured = concurrency * per_worker * reps
    latencies = sorted(latency for worker in workers for latency in worker.latencies_ms)
    ratios = [ours / bare for ours, bare in zip(ours_rates, bare_rates, strict=True)]
    bare_latencies.sort()
    return {
        "workers": concurrency,
        "codes": measured,
        "repetitions": reps,
        "codes_per_repetition": concurrency * per_worker,
        "blocks_per_repetition": blocks,
        "requests": usage_total["requests"],
        "requests_per_code": usage_total["requests"] / measured,
        "by_operation_per_code": {op: n / measured for op, n in sorted(usage_total["by_operation"].items())},
        "wru_per_code": usage_total["priced_wru"] / measured,
        "rru_per_code": usage_total["priced_rru"] / measured,
        "engine_wru_per_code": usage_total["engine_wru"] / measured,
        "engine_rru_per_code": usage_total["engine_rru"] / measured,
        "codes_per_s": statistics.median(ours_rates),
        "codes_per_s_repetitions": ours_rates,
        "bare_transactions_per_s": statistics.median(bare_rates),
        "bare_transactions_per_s_repetitions": bare_rates,
        "throughput_ratio": statistics.median(ratios),
        "throughput_ratio_range": [min(ratios), max(ratios)],
        "throughput_ratio_repetitions": ratios,
        "cpu_us_per_code": statistics.median(ours_cpu),
        "bare_cpu_us_per_transaction": statistics.median(bare_cpu),
        "issued_codes": codes,
        "latency_ms": _latency_summary(latencies),
        "bare_latency_ms": _latency_summary(bare_latencies),
    }


def _latency_summary(latencies: list[float]) -> dict[str, float]:
    return {
        **summary(latencies),
        "p90": latencies[int(0.9 * (len(latencies) - 1))],
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
    }


UNIT_KEYS = ("priced_wru", "priced_rru", "engine_wru", "engine_rru")


async def run_hot_path(
    environment: BenchEnvironment, pool: PoolConfig, levels: dict[int, int], pool_size: int, repetitions: int = 1
) -> tuple[dict[str, Any], list[str]]:
    """`levels`: concurrency -> claims per worker and repetition. (results, every code issued)."""
    results: dict[str, Any] = {"pool": pool.name, "pool_size": pool_size, "levels": {}}
    issued: list[str] = []
    for concurrency, per_worker in levels.items():
        level = await measure_level(environment, pool, concurrency, per_worker, pool_size, repetitions)
        issued += level.pop("issued_codes")
        results["levels"][f"c{concurrency}"] = level
    levels_done = results["levels"].values()
    codes = sum(level["codes"] for level in levels_done)
    results["requests_per_code"] = {name: level["requests_per_code"] for name, level in results["levels"].items()}
    results["throughput_ratio"] = {name: level["throughput_ratio"] for name, level in results["levels"].items()}
    results["throughput_ratio_range"] = {
        name: level["throughput_ratio_range"] for name, level in results["levels"].items()
    }
    # Units per code do not depend on concurrency beyond lost races: report them over every measured claim.
    results["wru_per_code"] = sum(level["wru_per_code"] * level["codes"] for level in levels_done) / codes
    results["rru_per_code"] = sum(level["rru_per_code"] * level["codes"] for level in levels_done) / codes
    results["engine_wru_per_code"] = sum(lv["engine_wru_per_code"] * lv["codes"] for lv in levels_done) / codes
    results["median_latency_ms"] = statistics.median(level["latency_ms"]["median"] for level in levels_done)
    return results, issued
