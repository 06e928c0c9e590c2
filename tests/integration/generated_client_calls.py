"""What a user's program does with a Python client generated from `/openapi.json` by openapi-python-client: issue,
replay with an Idempotency-Key, look up, read a pool's statistics, and get typed errors.

`test_api_contract.py` generates the client as the package `unique_codes_client`, type-checks this module against
it with `mypy --strict` (so every field used below is a typed attribute of a generated model, not a dictionary
entry), then runs `exercise` against `unique-codes serve`. In the project's own mypy run the package does not
exist and its names are `Any` (pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from unique_codes_client import Client
from unique_codes_client.api.default import issue_codes, list_pools, lookup_code, show_pool
from unique_codes_client.models import Error, IssuedCode, IssuedCodes, IssueRequest, PoolList, PoolWithStatistics

POOL = "orders"
"""A pool of its own: `exercise` counts what it issued from it."""


@dataclass(frozen=True)
class Observed:
    first: IssuedCode
    issued_at: datetime
    """`issuedAt` (`format: date-time`), parsed by the generated model."""
    replayed: IssuedCode
    replayed_header: str | None
    several: list[IssuedCode]
    found: IssuedCode
    reused_key: tuple[int, str]
    not_found: tuple[int, str]
    unknown_pool: tuple[int, str]
    pools: list[str]
    stats: PoolWithStatistics


def issued_code(parsed: Error | IssuedCode | IssuedCodes | None) -> IssuedCode:
    assert isinstance(parsed, IssuedCode), f"expected one issued code, got {parsed!r}"
    return parsed


def error_of(status: int, parsed: object) -> tuple[int, str]:
    assert isinstance(parsed, Error), f"expected an Error, got {parsed!r}"
    return status, parsed.error.code


def pool_stats(client: Client) -> PoolWithStatistics:
    stats = show_pool.sync(POOL, client=client)
    assert isinstance(stats, PoolWithStatistics), f"expected the pool's statistics, got {stats!r}"
    return stats


def exercise(base_url: str, idempotency_key: str) -> Observed:
    with Client(base_url=base_url, raise_on_unexpected_status=True) as client:
        request = IssueRequest(pool=POOL, used_by="alice@example.com", reference="order-42")
        first = issue_codes.sync_detailed(client=client, body=request, idempotency_key=idempotency_key)
        assert first.status_code == 201, first.content
        again = issue_codes.sync_detailed(client=client, body=request, idempotency_key=idempotency_key)
        other_body = IssueRequest(pool=POOL, used_by="mallory@example.com")
        reused = issue_codes.sync_detailed(client=client, body=other_body, idempotency_key=idempotency_key)
        several = issue_codes.sync(client=client, body=IssueRequest(pool=POOL, count=3))
        assert isinstance(several, IssuedCodes), f"expected three codes, got {several!r}"
        # As a person types it: lower case, spaces for dashes.
        typed = issued_code(first.parsed).code.lower().replace("-", " ")
        found = lookup_code.sync(typed, client=client)
        missing = lookup_code.sync_detailed("O-000-00", client=client)
        unknown = show_pool.sync_detailed("no-such-pool", client=client)
        pools = list_pools.sync(client=client)
        assert isinstance(pools, PoolList), f"expected the pools, got {pools!r}"
        return Observed(
            first=issued_code(first.parsed),
            issued_at=issued_code(first.parsed).issued_at,
            replayed=issued_code(again.parsed),
            replayed_header=again.headers.get("Idempotent-Replayed"),
            several=several.codes,
            found=issued_code(found),
            reused_key=error_of(reused.status_code, reused.parsed),
            not_found=error_of(missing.status_code, missing.parsed),
            unknown_pool=error_of(unknown.status_code, unknown.parsed),
            pools=[pool.name for pool in pools.pools],
            # Read once, after the issues: a container reuses a pool's counts for 5 s.
            stats=pool_stats(client),
        )
