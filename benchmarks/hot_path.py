"""Hot-path efficiency: requests and request units per issued code at 1, 16 and 64 concurrent warm containers.

Each worker is one container: its own aiobotocore client and its own `CandidatePrefetcher`, claiming codes in
a closed loop through `issue_codes`. A worker's first claim (its cold invocation, with the first prefetch) is
not counted; everything after it is, SDK retries, lost races and re-prefetches included.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from benchmarks.environment import BenchEnvironment, summary, verify_issued
from benchmarks.metering import RequestMeter
from codepool.config import PoolConfig
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from codepool.refilling import refill_pool
from codepool.runtime import Container


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


async def measure_claims(
    environment: BenchEnvironment, pool: PoolConfig, concurrency: int, per_worker: int
) -> dict[str, Any]:
    """Open `concurrency` containers, warm each with one claim, then count `per_worker` claims each."""
    pools = {pool.name: pool}
    meter = RequestMeter()
    session = environment.shared_session()
    async with AsyncExitStack() as stack:
        workers = []
        for _ in range(concurrency):
            container = await stack.enter_async_context(Container.open(environment.settings, pools, session=session))
            meter.attach(container.client)
            workers.append(Worker(container))
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


async def run_hot_path(
    environment: BenchEnvironment, pool: PoolConfig, levels: dict[int, int], pool_size: int
) -> dict[str, Any]:
    """`levels`: concurrency -> claims per worker. The pool is refilled to `pool_size` before each level."""
    results: dict[str, Any] = {"pool": pool.name, "pool_size": pool_size, "levels": {}}
    for concurrency, per_worker in levels.items():
        async with Container.open(environment.settings, {pool.name: pool}) as container:
            await refill_pool(container.repository, pool, pool_size)
        level = await measure_claims(environment, pool, concurrency, per_worker)
        level.pop("issued_codes")
        results["levels"][f"c{concurrency}"] = level
    levels_done = results["levels"].values()
    codes = sum(level["codes"] for level in levels_done)
    results["requests_per_code"] = {name: level["requests_per_code"] for name, level in results["levels"].items()}
    # Units per code do not depend on concurrency beyond lost races: report them over every measured claim.
    results["wru_per_code"] = sum(level["wru_per_code"] * level["codes"] for level in levels_done) / codes
    results["rru_per_code"] = sum(level["rru_per_code"] * level["codes"] for level in levels_done) / codes
    results["engine_wru_per_code"] = sum(lv["engine_wru_per_code"] * lv["codes"] for lv in levels_done) / codes
    results["median_latency_ms"] = statistics.median(level["latency_ms"]["median"] for level in levels_done)
    return results
