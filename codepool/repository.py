"""The storage port: what the services need from a code store, whatever the engine behind it.

`codepool.dynamodb.DynamoDBRepository` is the real adapter; the unit tests use an in-memory fake that honours
the same atomicity rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from codepool.model import Candidate, IssuedCode, PoolLedger, SweepState


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    key: str
    fingerprint: str
    codes: list[IssuedCode]
    expires_at: int
    """Epoch seconds after which the key may be reused (also the table's TTL attribute)."""


@dataclass(frozen=True, slots=True)
class SlotCount:
    """A shard's slots counted in key order: `count` of them, all if `last_key` is None; else the shard has more,
    and `last_key` is the last key counted (`codepool.queries` estimates the rest from it)."""

    count: int
    last_key: str | None = None


@dataclass(slots=True)
class ClaimOutcome:
    """What one atomic claim attempt did. Exactly one of these holds:

    - `issued` is set: every candidate was removed from the pool and recorded, in one write;
    - `replayed` is set: the idempotency key was already taken, nothing was written;
    - otherwise nothing was written, and `lost` (another claimer got there first), `stale` (the code was
      already issued; its slot is garbage to delete) and `throttled` (the engine's reason, e.g.
      `ThrottlingError`, when it refused for capacity or a conflicting transaction, not for the candidates)
      say why.
    """

    issued: list[IssuedCode] | None = None
    replayed: IdempotencyRecord | None = None
    lost: list[Candidate] = field(default_factory=list)
    stale: list[Candidate] = field(default_factory=list)
    rewritten: list[Candidate] = field(default_factory=list)
    """Stale too, but written before their code was issued: the slot was claimed, then the same write landed
    again (an SDK retry after a lost answer). The ledger counted that write once: removed, they are not counted."""
    throttled: str | None = None


@dataclass(slots=True)
class WriteReport:
    written: int = 0
    requests: int = 0
    unprocessed_retries: int = 0


class CodeRepository(Protocol):
    async def find_candidates(self, pool: str, shard: int, start: str, limit: int) -> list[Candidate]:
        """Up to `limit` available codes of one shard, from `start` on in key order, wrapping around."""
        ...

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        """Atomically: remove every candidate from the pool, record `records` (same order), store `idempotency`."""
        ...

    async def remove_stale_slot(self, pool: str, candidate: Candidate, token: str, *, counted: bool = True) -> None:
        """Delete a pool slot whose code turned out to be issued already, and count it in the ledger's `stale` in
        the same atomic write, once: only if the slot was still there, and a retry with the same `token` is the
        same write (so `issued` never counts a slot that left the pool without being issued)."""
        ...

    async def existing_among(
        self, pool: str, candidates: Sequence[Candidate], *, check_available: bool
    ) -> tuple[set[str], set[str]]:
        """Which candidates are already issued, and (if `check_available`) already in the pool."""
        ...

    async def available_among(self, pool: str, candidates: Sequence[Candidate]) -> set[str]:
        """Which candidates are in the pool already (their slots only)."""
        ...

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        """Write slots for these codes (they were checked not to be issued), blind: a slot written again is
        overwritten and counted twice in `written`."""
        ...

    async def add_new_slots(self, pool: str, candidates: Sequence[Candidate], writer: str) -> WriteReport:
        """Write slots for these codes where there is none yet; `written` counts only the slots created, by
        `writer` (one refill's token: a put retried after a lost answer finds its own slot and counts it). For
        small keyspaces and sweeps, where two refills at once may well write the same code."""
        ...

    async def count_available(self, pool: str, shard: int, limit: int | None = None) -> SlotCount:
        """The shard's slots, counted in key order up to `limit` (None: all of them); see `SlotCount`."""
        ...

    async def find_issued(self, keys: Sequence[str]) -> dict[str, IssuedCode]:
        """The issued codes recorded under any of `keys`, by key (strongly consistent)."""
        ...

    async def get_ledger(self, pool: str) -> PoolLedger:
        """The pool's ledger (an empty one if the pool never had one)."""
        ...

    async def add_to_ledger(self, pool: str, token: str, *, written: int = 0, imported: int = 0) -> None:
        """Count codes a refill wrote or an import added (atomic increments: concurrent writers add up). Idempotent
        per `token`: a retry with the same token and amounts (ours after a timeout, or the SDK's after a lost
        answer) is applied once, as DynamoDB deduplicates a transaction's `ClientRequestToken` for 10 minutes."""
        ...

    async def save_snapshots(self, pool: str, snapshots: Sequence[tuple[float, int]]) -> None: ...

    async def start_sweep(self, pool: str, sweep: SweepState) -> SweepState:
        """Record `sweep` unless a sweep was started already; the sweep that stands (theirs or this one)."""
        ...

    async def advance_sweep(self, pool: str, cursor: int) -> None:
        """Move the sweep's cursor forward to `cursor` (never back: a slower concurrent refill cannot undo)."""
        ...

    async def get_idempotency(self, key: str, now: int) -> IdempotencyRecord | None: ...
