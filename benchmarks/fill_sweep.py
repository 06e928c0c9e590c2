"""Keyspace fill sweep: requests per issued code as a numeric keyspace fills up, pool claim vs on-demand.

The keyspace (6 digits: 1,000,000 codes; `--quick`: 4 digits) is filled to 0, 50, 90 and 99 % with issued
code records written directly with `BatchWriteItem` (the fast path: going through the service would take
far longer than the few minutes the whole run may take on DynamoDB Local). At each level:
- on-demand draws random codes and `PutItem`s them if absent: ~1 / (1 - fill) requests per code;
- the pool is refilled from the same keyspace (its `BatchGetItem` check skips issued codes; that cost is
  reported apart as refill requests per code) and then claimed from by one warm container.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from typing import Any

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks.contenders.on_demand import OnDemandIssuer
from benchmarks.environment import BenchEnvironment, verify_issued
from benchmarks.hot_path import measure_claims
from benchmarks.metering import RequestMeter
from codepool.config import LOCAL_CREDENTIAL, PoolConfig
from codepool.dynamodb.keys import code_key
from codepool.errors import RefillError
from codepool.formats import CodeFormat
from codepool.refilling import refill_pool
from codepool.runtime import Container

LEVELS = (0, 50, 90, 99)
PREFILL_CONCURRENCY = 12
ON_DEMAND_WORKERS = 8
SEED = 20241101
MAX_POOL_CLAIMS = 500


async def run_fill_sweep(
    environment: BenchEnvironment, digits: int, pool_codes: int, on_demand_codes: dict[int, int]
) -> dict[str, Any]:
    fmt = CodeFormat(alphabet="numeric", length=digits)
    keyspace = fmt.keyspace
    order = [f"{n:0{digits}d}" for n in range(keyspace)]
    random.Random(SEED).shuffle(order)
    issued: set[str] = set()
    next_index = 0
    results: dict[str, Any] = {"digits": digits, "keyspace": keyspace, "pool": {}, "on_demand": {}, "levels": {}}
    prefill_seconds = 0.0
    for level in LEVELS:
        goal = keyspace * level // 100
        batch: list[str] = []
        while len(issued) + len(batch) < goal:
            code = order[next_index]
            next_index += 1
            if code not in issued:
                batch.append(code)
        started = time.perf_counter()
        await _prefill(environment, batch)
        prefill_seconds += time.perf_counter() - started
        issued.update(batch)
        fill = len(issued) / keyspace
        on_demand = await _measure_on_demand(environment, fmt, on_demand_codes[level], issued)
        pool = PoolConfig(name=f"fill{level}", format=fmt, target=pool_codes, low_watermark=0, shards=4)
        pooled = await _measure_pool(environment, pool, issued)
        results["on_demand"][str(level)] = on_demand["requests_per_code"]
        results["pool"][str(level)] = pooled["requests_per_code"]
        results["levels"][str(level)] = {"fill": fill, "on_demand": on_demand, "pool": pooled}
    results["prefill_items"] = next_index
    results["prefill_seconds"] = prefill_seconds
    return results


async def _measure_on_demand(
    environment: BenchEnvironment, fmt: CodeFormat, count: int, issued: set[str]
) -> dict[str, Any]:
    meter = RequestMeter()
    attempts: list[int] = []
    codes: list[str] = []
    async with environment.client() as client:
        meter.attach(client)
        issuer = OnDemandIssuer(client, environment.table_name)

        async def work(share: int) -> None:
            for _ in range(share):
                record, tries = await issuer.issue(fmt, "on-demand")
                attempts.append(tries)
                codes.append(record["code"])

        shares = [count // ON_DEMAND_WORKERS + (i < count % ON_DEMAND_WORKERS) for i in range(ON_DEMAND_WORKERS)]
        await asyncio.gather(*(work(share) for share in shares))
        await verify_issued(client, environment.table_name, codes, "on-demand fill sweep")
    issued.update(codes)
    usage = meter.snapshot()
    return {
        "codes": count,
        "requests_per_code": usage["requests"] / count,
        "attempts_per_code": sum(attempts) / count,
        "max_attempts": max(attempts),
        "wru_per_code": usage["priced_wru"] / count,
    }


async def _measure_pool(environment: BenchEnvironment, pool: PoolConfig, issued: set[str]) -> dict[str, Any]:
    meter = RequestMeter()
    refill_error = None
    refill_fill: float | None = None
    refill_checked: bool | None = None
    async with Container.open(environment.settings, {pool.name: pool}) as container:
        # The pre-filled codes stand for codes this pool issued: its ledger says so, as a pool's ledger does for
        # the codes it issued (the refiller estimates the fill from it). Not metered: it is set-up.
        await container.repository.add_to_ledger(pool.name, uuid.uuid4().hex, imported=len(issued))
        meter.attach(container.client)
        try:
            summary = await refill_pool(container.repository, pool, pool.target)
            written = summary.written
            refill_fill, refill_checked = summary.fill_fraction, summary.checked
        except RefillError as exc:
            # Reported, not hidden: see the README on the refiller's barren-round rule at high fill.
            refill_error, written = str(exc), exc.written
        refill_usage = meter.snapshot()
    # One warm container claims up to half of what was written (its first, warming claim is not counted).
    claims = max(1, min(MAX_POOL_CLAIMS, written // 2 - 1))
    claimed = await measure_claims(environment, pool, 1, claims)
    issued.update(claimed.pop("issued_codes", []))
    return {
        "requests_per_code": claimed["requests_per_code"],
        "wru_per_code": claimed["wru_per_code"],
        "rru_per_code": claimed["rru_per_code"],
        "claimed": claims,
        "refill_written": written,
        "refill_requests_per_code": refill_usage["requests"] / max(1, written),
        "refill_by_operation": refill_usage["by_operation"],
        "refill_wru_per_code": refill_usage["priced_wru"] / max(1, written),
        "refill_rru_per_code": refill_usage["priced_rru"] / max(1, written),
        "refill_error": refill_error,
        "refill_fill_fraction": refill_fill,
        "refill_checked": refill_checked,
    }


async def _prefill(environment: BenchEnvironment, codes: list[str]) -> None:
    """Write issued-code records straight to the table, signed like the SDK does but without its overhead."""
    if not codes:
        return
    settings = environment.settings
    access_key = os.environ.get("AWS_ACCESS_KEY_ID") or LOCAL_CREDENTIAL
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY") or LOCAL_CREDENTIAL
    signer = SigV4Auth(
        Credentials(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN")), "dynamodb", settings.region
    )
    url = environment.endpoint_url
    semaphore = asyncio.Semaphore(PREFILL_CONCURRENCY)

    async def write(session: aiohttp.ClientSession, chunk: list[str]) -> None:
        puts = [{"PutRequest": {"Item": {**code_key(c), "code": {"S": c}, "pool": {"S": "prefill"}}}} for c in chunk]
        request_items: Any = {environment.table_name: puts}
        async with semaphore:
            while request_items:
                request = AWSRequest(
                    method="POST",
                    url=url,
                    data=json.dumps({"RequestItems": request_items}),
                    headers={
                        "X-Amz-Target": "DynamoDB_20120810.BatchWriteItem",
                        "Content-Type": "application/x-amz-json-1.0",
                    },
                )
                signer.add_auth(request)
                async with session.post(url, data=request.body, headers=dict(request.headers)) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200:
                        raise RuntimeError(f"pre-fill BatchWriteItem failed: {response.status} {body}")
                request_items = body.get("UnprocessedItems") or None

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=PREFILL_CONCURRENCY)) as session:
        chunks = [codes[i : i + 25] for i in range(0, len(codes), 25)]
        await asyncio.gather(*(write(session, chunk) for chunk in chunks))
