"""Issue codes: validate the request, claim candidates in one atomic write, replay idempotent retries."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from codepool.components import Components
from codepool.config import PoolConfig, resolve_pool
from codepool.errors import (
    ClaimContentionError,
    IdempotencyMismatchError,
    InvalidRequestError,
    UnavailableError,
)
from codepool.model import (
    MAX_COUNT,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    METADATA_LIMITS,
    IssuedCode,
    IssueRequest,
    utc_timestamp,
)
from codepool.repository import IdempotencyRecord

MAX_CLAIM_ATTEMPTS = 8
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class IssueResult:
    codes: list[IssuedCode]
    replayed: bool = False
    lost_races: int = 0
    """Claim attempts that lost to another claimer (or met a stale slot) before this one succeeded."""


def scoped_idempotency_key(caller: str | None, key: str) -> str:
    """Each authenticated caller has a key space of its own: another caller reusing a key gets codes of its
    own, never the first caller's response."""
    if caller is None:
        return key
    return f"{hashlib.sha256(caller.encode()).hexdigest()[:32]}#{key}"


def validate_issue_request(
    request: IssueRequest, pools: Mapping[str, PoolConfig], idempotency_key: str | None
) -> PoolConfig:
    if not 1 <= request.count <= MAX_COUNT:
        raise InvalidRequestError(f"count must be between 1 and {MAX_COUNT}, got {request.count}")
    for name, value in request.metadata().items():
        if len(value) > METADATA_LIMITS[name]:
            raise InvalidRequestError(f"{name} is longer than {METADATA_LIMITS[name]} characters")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise InvalidRequestError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return resolve_pool(pools, request.pool)


async def issue_codes(
    components: Components,
    request: IssueRequest,
    *,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    caller: str | None = None,
    clock: Callable[[], float] = time.time,
) -> IssueResult:
    """Claim `request.count` codes from the pool in one atomic write, retrying lost races a bounded number of times.

    With an idempotency key, the key's record is part of that same write, so a retry either finds the
    record (and gets the same codes back) or finds nothing claimed at all.
    """
    pool = validate_issue_request(request, components.pools, idempotency_key)
    if idempotency_key is not None:
        idempotency_key = scoped_idempotency_key(caller, idempotency_key)
    try:
        return await _claim(components, pool, request, request_id, idempotency_key, clock)
    except UnavailableError:
        # An empty or contended pool must not hide that this key was already served.
        if idempotency_key is not None:
            previous = await components.repository.get_idempotency(idempotency_key, int(clock()))
            if previous is not None:
                return _replay(previous, request)
        raise


async def _claim(
    components: Components,
    pool: PoolConfig,
    request: IssueRequest,
    request_id: str | None,
    idempotency_key: str | None,
    clock: Callable[[], float],
) -> IssueResult:
    repository, prefetcher = components.repository, components.prefetcher
    metadata = request.metadata()
    for attempt in range(MAX_CLAIM_ATTEMPTS):
        candidates = await prefetcher.take(pool, request.count)
        now = clock()
        issued_at = utc_timestamp(now)
        records = [
            IssuedCode(code=c.code, pool=pool.name, issued_at=issued_at, metadata=metadata, request_id=request_id)
            for c in candidates
        ]
        idempotency = None
        if idempotency_key is not None:
            idempotency = IdempotencyRecord(
                key=idempotency_key,
                fingerprint=request.fingerprint(),
                codes=records,
                expires_at=int(now) + IDEMPOTENCY_TTL_SECONDS,
            )
        outcome = await repository.claim(pool.name, candidates, records, idempotency, int(now))
        prefetcher.settle(pool.name, candidates, outcome)
        if outcome.issued is not None:
            return IssueResult(codes=outcome.issued, lost_races=attempt)
        if outcome.replayed is not None:
            return _replay(outcome.replayed, request)
        await asyncio.gather(*(repository.remove_slot(pool.name, stale) for stale in outcome.stale))
    raise ClaimContentionError(pool.name, MAX_CLAIM_ATTEMPTS)


def _replay(previous: IdempotencyRecord, request: IssueRequest) -> IssueResult:
    if previous.fingerprint != request.fingerprint():
        raise IdempotencyMismatchError
    return IssueResult(codes=previous.codes, replayed=True)
