"""Issue codes: validate the request, claim candidates in one atomic write, replay idempotent retries."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from codepool.backoff import full_jitter
from codepool.components import Components
from codepool.config import PoolConfig, resolve_pool
from codepool.deadline import Deadline, within
from codepool.errors import (
    ClaimContentionError,
    IdempotencyMismatchError,
    InvalidRequestError,
    PoolEmptyError,
    PoolExhaustedError,
    StoreUnavailableError,
    UnavailableError,
)
from codepool.model import (
    MAX_COUNT,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_REQUEST_ID_LENGTH,
    METADATA_LIMITS,
    Candidate,
    IssuedCode,
    IssueRequest,
    PoolLedger,
    utc_timestamp,
    utf8_length,
)
from codepool.queries import exhaustion_reason
from codepool.repository import CodeRepository, IdempotencyRecord
from codepool.tasks import run_together

MAX_CLAIM_ATTEMPTS = 8
"""Claim attempts that may lose a race (or meet a stale slot) before the request is answered `claim_contention`."""
MAX_CLAIM_THROTTLES = 6
"""Claims the engine may refuse for capacity or a conflicting transaction before the request is a 503."""
THROTTLE_BACKOFF_BASE_SECONDS = 0.025
THROTTLE_BACKOFF_CAP_SECONDS = 0.8
IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class ClaimThrottledError(StoreUnavailableError):
    """The engine kept refusing the claim for capacity (or a conflicting transaction): a 503 `store_unavailable`
    whose message names the engine's reason; `throttles` feeds the `ClaimThrottles` metric."""

    def __init__(self, pool: str, reason: str, throttles: int) -> None:
        super().__init__(f"DynamoDB refused {throttles} claims in pool {pool!r} ({reason}); retry", retry_after=1)
        self.throttles = throttles


@dataclass(frozen=True, slots=True)
class IssueResult:
    codes: list[IssuedCode]
    replayed: bool = False
    lost_races: int = 0
    """Claim attempts that lost to another claimer (or met a stale slot) before this one succeeded."""
    throttles: int = 0
    """Claim attempts the engine refused for capacity or a conflicting transaction (backed off, then retried)."""


SHARED_SCOPE = "shared"
"""The scope of every caller without an identity (no authorizer: `unique-codes serve`, a function URL)."""


def scoped_idempotency_key(caller: str | None, key: str) -> str:
    """`<scope>#<key>`: each authenticated caller has a key space of its own (another caller reusing a key gets
    codes of its own, never the first caller's response), and callers without an identity share one.

    The scope is 32 hex digits of the identity's SHA-256, or `SHARED_SCOPE`. Neither holds a '#', so the scope
    ends at the first '#', and `SHARED_SCOPE` is no digest: whatever a client puts in its key, it stays in its
    own scope. (Unscoped keys were once stored as sent, so `<digest>#key` reached that caller's records.)
    """
    scope = SHARED_SCOPE if caller is None else hashlib.sha256(caller.encode()).hexdigest()[:32]
    return f"{scope}#{key}"


def validate_issue_request(
    request: IssueRequest, pools: Mapping[str, PoolConfig], idempotency_key: str | None
) -> PoolConfig:
    if not 1 <= request.count <= MAX_COUNT:
        raise InvalidRequestError(f"count must be between 1 and {MAX_COUNT}, got {request.count}")
    for name, value in request.metadata().items():
        if _utf8_length(name, value) > METADATA_LIMITS[name]:
            raise InvalidRequestError(f"{name} is longer than {METADATA_LIMITS[name]} bytes of UTF-8")
    if idempotency_key is not None and not 1 <= _utf8_length("Idempotency-Key", idempotency_key) <= (
        MAX_IDEMPOTENCY_KEY_LENGTH
    ):
        raise InvalidRequestError(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} bytes")
    return resolve_pool(pools, request.pool)


def _utf8_length(name: str, value: str) -> int:
    try:
        return utf8_length(value)
    except ValueError as exc:
        raise InvalidRequestError(f"{name} is {exc}") from None


async def issue_codes(
    components: Components,
    request: IssueRequest,
    *,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    caller: str | None = None,
    deadline: Deadline | None = None,
    clock: Callable[[], float] = time.time,
) -> IssueResult:
    """Claim `request.count` codes from the pool in one atomic write, retrying lost races a bounded number of times.

    With an idempotency key, the key's record is part of that same write, so a retry either finds the
    record (and gets the same codes back) or finds nothing claimed at all. Every call and every backoff draws
    from `deadline`: when it runs out the answer is `StoreUnavailableError`, never a late success.
    """
    pool = validate_issue_request(request, components.pools, idempotency_key)
    # A request that names no pool is the same request as one naming the pool it gets (idempotency included).
    request = replace(request, pool=pool.name)
    if request_id is not None and len(request_id) > MAX_REQUEST_ID_LENGTH:
        request_id = None
    if idempotency_key is not None:
        idempotency_key = scoped_idempotency_key(caller, idempotency_key)
    async with within(deadline, f"issuing from pool {pool.name!r}"):
        try:
            return await _claim(components, pool, request, request_id, idempotency_key, deadline, clock)
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
    deadline: Deadline | None,
    clock: Callable[[], float],
) -> IssueResult:
    repository, prefetcher = components.repository, components.prefetcher
    metadata = request.metadata()
    lost_races = throttles = 0
    while lost_races < MAX_CLAIM_ATTEMPTS:
        try:
            candidates = await prefetcher.take(pool, request.count)
        except PoolEmptyError as empty:
            raise await _empty_or_exhausted(repository, pool, request.count, empty.left) from None
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
            return IssueResult(codes=outcome.issued, lost_races=lost_races, throttles=throttles)
        if outcome.replayed is not None:
            return _replay(outcome.replayed, request)
        if outcome.lost or outcome.stale or outcome.rewritten:
            lost_races += 1
            await _remove_stale_slots(repository, pool, outcome.stale, outcome.rewritten)
        if outcome.throttled is not None:
            throttles += 1
            await _back_off(pool, outcome.throttled, throttles, deadline)
    raise ClaimContentionError(pool.name, MAX_CLAIM_ATTEMPTS)


async def _empty_or_exhausted(repository: CodeRepository, pool: PoolConfig, count: int, left: int) -> PoolEmptyError:
    """A pool without `count` codes is `pool_empty` while a refill can add codes, `pool_exhausted` once none
    can: the ledger is read only on this path. When `left` (what the claim found) is more than none, the answer
    says so, and that a claim is all or none: a smaller one can succeed now."""
    ledger = PoolLedger() if pool.imported_only else await repository.get_ledger(pool.name)
    why = exhaustion_reason(pool, ledger)
    all_or_none = "a claim of several codes is all or none, so none was issued"
    if why is None:
        if not left:
            return PoolEmptyError(pool.name)
        message = (
            f"pool {pool.name!r} has about {left} codes left, fewer than the {count} asked for: {all_or_none}; "
            f"ask for {left} or fewer, or retry once the refiller has added codes"
        )
        return PoolEmptyError(pool.name, message=message, left=left)
    if left:
        why = f"only about {left} codes are left, fewer than the {count} asked for ({all_or_none}), and {why}"
    return PoolExhaustedError(pool.name, why, left=left)


async def _remove_stale_slots(
    repository: CodeRepository, pool: PoolConfig, stale: list[Candidate], rewritten: list[Candidate]
) -> None:
    """Delete slots of codes issued already, together (the first failure cancels the rest): the stale ones
    counted in the ledger, the ones written again by a retry not (`ClaimOutcome.rewritten`)."""
    removals = [(candidate, True) for candidate in stale] + [(candidate, False) for candidate in rewritten]
    await run_together(
        repository.remove_stale_slot(pool.name, candidate, uuid.uuid4().hex, counted=counted)
        for candidate, counted in removals
    )


async def _back_off(pool: PoolConfig, reason: str, throttles: int, deadline: Deadline | None) -> None:
    """Full jitter, so throttled containers do not come back together; the candidates stay queued. Gives up
    with the engine's reason when the attempts or the deadline would run out first."""
    pause = full_jitter(throttles, THROTTLE_BACKOFF_BASE_SECONDS, THROTTLE_BACKOFF_CAP_SECONDS)
    if throttles >= MAX_CLAIM_THROTTLES or (deadline is not None and not deadline.allows(pause + 0.05)):
        raise ClaimThrottledError(pool.name, reason, throttles)
    await asyncio.sleep(pause)


def _replay(previous: IdempotencyRecord, request: IssueRequest) -> IssueResult:
    if previous.fingerprint != request.fingerprint():
        raise IdempotencyMismatchError
    return IssueResult(codes=previous.codes, replayed=True)
