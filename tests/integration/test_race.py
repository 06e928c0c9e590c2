"""Invariant 1 under load, on DynamoDB Local (moto cannot isolate concurrent transactions)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from codepool import services
from codepool.candidates import CandidatePrefetcher
from codepool.config import PoolConfig, Settings
from codepool.errors import ClaimContentionError, PoolEmptyError
from codepool.formats import CodeFormat
from codepool.model import IssueRequest
from tests.conftest import repository_for

CLAIMERS = 64
CODES = 5_000
POOL = PoolConfig(
    name="race", format=CodeFormat(alphabet="unambiguous", length=8), target=1_500, shards=4, low_watermark=100
)
POOLS = {POOL.name: POOL}


async def scan_table(settings: Settings) -> list[dict[str, Any]]:
    async with AsyncExitStack() as stack:
        repository = await repository_for(settings, stack)
        client = repository._client
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"TableName": settings.table_name}
        while True:
            page = await client.scan(**arguments)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def test_64_claimers_and_two_overlapping_refills_never_issue_a_code_twice(local_table: Settings) -> None:
    async with AsyncExitStack() as stack:
        repository = await repository_for(local_table, stack)
        await services.refill_pool(repository, POOL)
        issued: list[tuple[str, str, str]] = []
        done = asyncio.Event()
        refill_runs = [0, 0]
        written_during_claims = 0

        async def claimer(number: int) -> None:
            prefetcher = CandidatePrefetcher(repository)
            sequence = 0
            while len(issued) < CODES:
                sequence += 1
                request = IssueRequest(pool=POOL.name, used_by=f"claimer-{number}", reference=f"{number}-{sequence}")
                try:
                    result = await services.issue_codes(repository, prefetcher, POOLS, request)
                except (PoolEmptyError, ClaimContentionError):
                    await asyncio.sleep(0.02)
                    continue
                issued.append((result.codes[0].code, f"claimer-{number}", f"{number}-{sequence}"))
            done.set()

        async def refiller(number: int) -> None:
            nonlocal written_during_claims
            while not done.is_set():
                summary = await services.refill_pool(repository, POOL)
                written_during_claims += summary.written
                refill_runs[number] += 1
                await asyncio.sleep(0.05)

        await asyncio.gather(*(claimer(n) for n in range(CLAIMERS)), refiller(0), refiller(1))

    codes = [code for code, _, _ in issued]
    assert len(codes) >= CODES
    assert len(set(codes)) == len(codes), "a code was issued twice"
    # The pool started with POOL.target codes, so the claims could only finish because both refillers kept
    # adding codes while they ran.
    assert min(refill_runs) >= 1, f"a refiller never ran during the claims: {refill_runs}"
    assert written_during_claims >= CODES - POOL.target
    assert all(POOL.format.matches(code) for code in codes)

    items = await scan_table(local_table)
    records = {item["pk"]["S"].removeprefix("CODE#"): item for item in items if item["pk"]["S"].startswith("CODE#")}
    # Every returned code is recorded with its metadata, and nothing was recorded that was not returned.
    assert set(records) == set(codes)
    for code, used_by, reference in issued:
        assert records[code]["usedBy"]["S"] == used_by
        assert records[code]["reference"]["S"] == reference
        assert records[code]["pool"]["S"] == POOL.name
    slots = {item["sk"]["S"] for item in items if item["pk"]["S"].startswith("POOL#")}
    assert len(slots) > 0
