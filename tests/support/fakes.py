"""An in-memory `CodeRepository` that keeps DynamoDB's promises: each claim is all-or-nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from codepool.model import Candidate, IssuedCode, PoolLedger, SweepState
from codepool.repository import ClaimOutcome, IdempotencyRecord, SlotCount, WriteReport


@dataclass
class InMemoryRepository:
    slots: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    issued: dict[str, IssuedCode] = field(default_factory=dict)
    idempotency: dict[str, IdempotencyRecord] = field(default_factory=dict)
    ledgers: dict[str, PoolLedger] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    requests: int = 0

    async def find_candidates(self, pool: str, shard: int, start: str, limit: int) -> list[Candidate]:
        self.requests += 1
        keys = sorted(self.slots.get((pool, shard), {}))
        ordered = [k for k in keys if k >= start] + [k for k in keys if k < start]
        return [Candidate(key=k, code=self.slots[(pool, shard)][k], shard=shard) for k in ordered[:limit]]

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        self.requests += 1
        if idempotency is not None:
            previous = self.idempotency.get(idempotency.key)
            if previous is not None and previous.expires_at >= now:
                return ClaimOutcome(replayed=previous)
        outcome = ClaimOutcome()
        for candidate in candidates:
            slot_exists = candidate.key in self.slots.get((pool, candidate.shard), {})
            if not slot_exists:
                outcome.lost.append(candidate)
            elif candidate.key in self.issued:
                outcome.stale.append(candidate)
        if outcome.lost or outcome.stale:
            return outcome
        for candidate, record in zip(candidates, records, strict=True):
            del self.slots[(pool, candidate.shard)][candidate.key]
            self.issued[candidate.key] = record
        if idempotency is not None:
            self.idempotency[idempotency.key] = idempotency
        return ClaimOutcome(issued=list(records))

    async def remove_stale_slot(self, pool: str, candidate: Candidate, token: str, *, counted: bool = True) -> None:
        self.requests += 1
        if self._seen(token):
            return
        if self.slots.get((pool, candidate.shard), {}).pop(candidate.key, None) is not None and counted:
            ledger = self.ledgers.get(pool, PoolLedger())
            self.ledgers[pool] = replace(ledger, stale=ledger.stale + 1)

    async def existing_among(
        self, pool: str, candidates: Sequence[Candidate], *, check_available: bool
    ) -> tuple[set[str], set[str]]:
        self.requests += 1
        issued = {c.key for c in candidates if c.key in self.issued}
        available = self.available_keys(pool) if check_available else set()
        return issued, {c.key for c in candidates if c.key in available}

    async def available_among(self, pool: str, candidates: Sequence[Candidate]) -> set[str]:
        self.requests += 1
        available = self.available_keys(pool)
        return {c.key for c in candidates if c.key in available}

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        self.requests += 1
        for candidate in candidates:
            self.slots.setdefault((pool, candidate.shard), {})[candidate.key] = candidate.code
        return WriteReport(written=len(candidates), requests=(len(candidates) + 24) // 25)

    async def add_new_slots(self, pool: str, candidates: Sequence[Candidate], writer: str) -> WriteReport:
        self.requests += len(candidates)
        written = 0
        for candidate in candidates:
            slots = self.slots.setdefault((pool, candidate.shard), {})
            if candidate.key not in slots:
                slots[candidate.key] = candidate.code
                written += 1
        return WriteReport(written=written, requests=len(candidates))

    async def count_available(self, pool: str, shard: int, limit: int | None = None) -> SlotCount:
        self.requests += 1
        keys = sorted(self.slots.get((pool, shard), {}))
        if limit is None or len(keys) <= limit:
            return SlotCount(len(keys))
        return SlotCount(limit, keys[limit - 1])

    async def get_issued(self, keys: Sequence[str]) -> IssuedCode | None:
        self.requests += 1
        return next((self.issued[key] for key in keys if key in self.issued), None)

    async def find_issued(self, keys: Sequence[str]) -> dict[str, IssuedCode]:
        self.requests += 1
        return {key: self.issued[key] for key in keys if key in self.issued}

    async def get_ledger(self, pool: str) -> PoolLedger:
        self.requests += 1
        return self.ledgers.get(pool, PoolLedger())

    async def add_to_ledger(self, pool: str, token: str, *, written: int = 0, imported: int = 0) -> None:
        self.requests += 1
        if self._seen(token):
            return
        ledger = self.ledgers.get(pool, PoolLedger())
        self.ledgers[pool] = replace(ledger, written=ledger.written + written, imported=ledger.imported + imported)

    async def save_snapshots(self, pool: str, snapshots: Sequence[tuple[float, int]]) -> None:
        self.requests += 1
        self.ledgers[pool] = replace(self.ledgers.get(pool, PoolLedger()), snapshots=tuple(snapshots))

    async def start_sweep(self, pool: str, sweep: SweepState) -> SweepState:
        self.requests += 1
        ledger = self.ledgers.get(pool, PoolLedger())
        if ledger.sweep is None:
            self.ledgers[pool] = ledger = replace(ledger, sweep=sweep)
        assert ledger.sweep is not None
        return ledger.sweep

    async def advance_sweep(self, pool: str, cursor: int) -> None:
        self.requests += 1
        ledger = self.ledgers.get(pool, PoolLedger())
        if ledger.sweep is not None and ledger.sweep.cursor < cursor:
            self.ledgers[pool] = replace(ledger, sweep=replace(ledger.sweep, cursor=cursor))

    async def get_idempotency(self, key: str, now: int) -> IdempotencyRecord | None:
        self.requests += 1
        record = self.idempotency.get(key)
        return record if record is not None and record.expires_at >= now else None

    def _seen(self, token: str) -> bool:
        """Whether a write with this client request token was applied already (DynamoDB keeps them 10 minutes)."""
        seen = token in self.tokens
        self.tokens.add(token)
        return seen

    def available_keys(self, pool: str) -> set[str]:
        return {key for (name, _), slots in self.slots.items() if name == pool for key in slots}
