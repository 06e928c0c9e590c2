"""Import existing codes (printed on cards, bought in, migrated) into a pool: each validated against the pool's
format, duplicates found within the input and against every code issued or pooled, the rest written as slots.

Running the same input again is harmless: its codes are then found in the pool (or issued) and nothing is
written. The pool's ledger counts what was imported (`PoolLedger.imported`), for its statistics.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from codepool.backoff import full_jitter
from codepool.config import PoolConfig
from codepool.errors import RefillError, StoreUnavailableError
from codepool.formats import CheckCharacterError
from codepool.model import Candidate, shard_of
from codepool.repository import CodeRepository
from codepool.tasks import run_limited

IMPORT_BATCH = 1_000
"""Codes validated before they are checked and written together: bounds memory besides the duplicate index."""
CHECK_CHUNK = 50
"""Codes per existence check: 100 keys (each code's record and its slot), one BatchGetItem."""
WRITE_CHUNK = 25
IN_FLIGHT = 8
"""Requests an import has in flight at most, like a refill (`codepool.refilling.REQUESTS_IN_FLIGHT`)."""
LEDGER_ATTEMPTS = 4
"""Sends of one ledger addition (the same token each time) before an import gives up counting a batch."""
REPORTED_LINES = 100
"""Line numbers kept per kind of rejection for the summary (the counts are complete)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    text: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "reason": self.reason}


@dataclass(slots=True)
class ImportSummary:
    pool: str
    lines: int = 0
    imported: int = 0
    already_available: int = 0
    already_issued: int = 0
    duplicates: int = 0
    invalid: int = 0
    duplicate_lines: list[Rejected] = field(default_factory=list)
    invalid_lines: list[Rejected] = field(default_factory=list)

    def reject(self, rejected: Rejected, *, duplicate: bool) -> None:
        if duplicate:
            self.duplicates += 1
            kept = self.duplicate_lines
        else:
            self.invalid += 1
            kept = self.invalid_lines
        if len(kept) < REPORTED_LINES:
            kept.append(rejected)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "lines": self.lines,
            "imported": self.imported,
            "alreadyAvailable": self.already_available,
            "alreadyIssued": self.already_issued,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "duplicateLines": [rejected.to_json() for rejected in self.duplicate_lines],
            "invalidLines": [rejected.to_json() for rejected in self.invalid_lines],
        }


async def import_codes(
    repository: CodeRepository,
    pool: PoolConfig,
    entries: Iterable[tuple[int, str]],
    on_progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import `(line number, text)` entries into `pool`; returns what happened to each line, counted."""
    summary = ImportSummary(pool=pool.name)
    first_seen: dict[str, int] = {}
    batch: list[Candidate] = []
    for line, text in entries:
        summary.lines += 1
        candidate = _validate(pool, line, text, first_seen, summary)
        if candidate is not None:
            batch.append(candidate)
        if len(batch) >= IMPORT_BATCH:
            await _store(repository, pool, batch, summary)
            batch = []
            if on_progress is not None:
                on_progress(summary)
    if batch:
        await _store(repository, pool, batch, summary)
    if on_progress is not None:
        on_progress(summary)
    return summary


def _validate(
    pool: PoolConfig, line: int, text: str, first_seen: dict[str, int], summary: ImportSummary
) -> Candidate | None:
    fmt = pool.format
    try:
        key = fmt.resolve(text)
    except CheckCharacterError:
        summary.reject(Rejected(line, text, "wrong check character"), duplicate=False)
        return None
    if key is None:
        reason = f"not a code of pool {pool.name!r} (its codes look like {fmt.generate()!r})"
        summary.reject(Rejected(line, text, reason), duplicate=False)
        return None
    code = fmt.display_of(key)
    if fmt.is_blocked(code):
        reason = "contains a blocked word (the pool's blocklist, or the default list unless default_blocklist = false)"
        summary.reject(Rejected(line, text, reason), duplicate=False)
        return None
    if key in first_seen:
        summary.reject(Rejected(line, text, f"same code as line {first_seen[key]}"), duplicate=True)
        return None
    first_seen[key] = line
    return Candidate(key=key, code=code, shard=shard_of(key, pool.shards))


async def _store(repository: CodeRepository, pool: PoolConfig, batch: list[Candidate], summary: ImportSummary) -> None:
    """Check the batch against issued and pooled codes, write the fresh ones, count them in the ledger."""
    chunks = [batch[start : start + CHECK_CHUNK] for start in range(0, len(batch), CHECK_CHUNK)]
    found = await run_limited(
        IN_FLIGHT, (partial(repository.existing_among, pool.name, chunk, check_available=True) for chunk in chunks)
    )
    issued = set().union(*(pair[0] for pair in found))
    available = set().union(*(pair[1] for pair in found)) - issued
    summary.already_issued += sum(candidate.key in issued for candidate in batch)
    summary.already_available += sum(candidate.key in available for candidate in batch)
    fresh = [candidate for candidate in batch if candidate.key not in issued and candidate.key not in available]
    landed = 0
    failures: list[Exception] = []

    async def write(chunk: list[Candidate]) -> None:
        # After a failure no chunk starts, but those in flight finish: each may land, and what lands is counted.
        nonlocal landed
        if failures:
            return
        try:
            report = await repository.add_available(pool.name, chunk)
        except RefillError as exc:
            landed += exc.written
            failures.append(exc)
            return
        except StoreUnavailableError as exc:
            failures.append(exc)
            return
        landed += report.written

    chunks = [fresh[start : start + WRITE_CHUNK] for start in range(0, len(fresh), WRITE_CHUNK)]
    await run_limited(IN_FLIGHT, (partial(write, chunk) for chunk in chunks))
    # Counted even when a chunk failed: a re-run finds the chunks that landed in the pool and skips them.
    if landed:
        await _count_imported(repository, pool, landed)
    summary.imported += landed
    if failures:
        raise failures[0]


async def _count_imported(repository: CodeRepository, pool: PoolConfig, landed: int) -> None:
    """Add `landed` to the ledger's `imported` once: a retry after a lost answer reuses the token."""
    token = uuid.uuid4().hex
    for attempt in range(LEDGER_ATTEMPTS):
        try:
            await repository.add_to_ledger(pool.name, token, imported=landed)
            return
        except StoreUnavailableError:
            if attempt + 1 == LEDGER_ATTEMPTS:
                raise
            await asyncio.sleep(full_jitter(attempt, 0.1, 2.0))
