"""Where the next claim's candidates come from: a per-container prefetch of available codes.

A warm container queries a window of available codes once and claims them one by one, so the hot path
averages about one DynamoDB request per issued code. Each window starts at a random code in a random shard,
so concurrent containers rarely hold the same candidates. Losing a race means another container works the
same stretch: the window is dropped and the next one is smaller (down to `MIN_WINDOW`); a window consumed
without a lost race doubles the next one (up to `MAX_WINDOW`).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Sequence

from codepool.config import PoolConfig
from codepool.errors import PoolEmptyError
from codepool.model import Candidate
from codepool.repository import ClaimOutcome, CodeRepository

INITIAL_WINDOW = 16
MIN_WINDOW = 4
MAX_WINDOW = 64


class CandidatePrefetcher:
    def __init__(self, repository: CodeRepository) -> None:
        self._repository = repository
        self._queues: dict[str, deque[Candidate]] = {}
        self._windows: dict[str, int] = {}
        self._contended: dict[str, bool] = {}

    def window(self, pool: str) -> int:
        return self._windows.get(pool, INITIAL_WINDOW)

    def held(self, pool: str) -> int:
        """Candidates of `pool` waiting in this container's queue."""
        return len(self._queues.get(pool, ()))

    async def take(self, pool: PoolConfig, count: int) -> list[Candidate]:
        queue = self._queues.setdefault(pool.name, deque())
        if len(queue) < count:
            await self._prefetch(pool, queue, count)
        if len(queue) < count:
            # Every shard was read from a random start, wrapping around, for as many as were missing: the queue
            # holds what the pool had (less codes claimed meanwhile, plus stale slots not yet found out).
            raise PoolEmptyError(pool.name, left=len(queue))
        return [queue.popleft() for _ in range(count)]

    def settle(self, pool: str, candidates: Sequence[Candidate], outcome: ClaimOutcome) -> None:
        """Account for one claim attempt on `candidates` (taken from this prefetcher).

        Issued candidates are gone. After a lost race the window is dropped and the next one halved: another
        container works the same stretch. Stale candidates (already issued) are dropped; the rest, which were
        not the reason the attempt failed (or were not used because the request was a replay), go first next time.
        """
        if outcome.issued is not None:
            return
        if outcome.lost:
            self._queues.get(pool, deque()).clear()
            self._windows[pool] = max(MIN_WINDOW, self.window(pool) // 2)
            self._contended[pool] = True
        failed = {c.key for c in [*outcome.lost, *outcome.stale, *outcome.rewritten]}
        unused = [c for c in candidates if c.key not in failed]
        self._queues.setdefault(pool, deque()).extendleft(reversed(unused))

    async def _prefetch(self, pool: PoolConfig, queue: deque[Candidate], count: int) -> None:
        if not self._contended.pop(pool.name, True):
            self._windows[pool.name] = min(MAX_WINDOW, self.window(pool.name) * 2)
        self._contended[pool.name] = False
        shards = list(range(pool.shards))
        secrets.SystemRandom().shuffle(shards)
        for shard in shards:
            start = pool.format.random_key()
            limit = max(self.window(pool.name), count - len(queue))
            found = await self._repository.find_candidates(pool.name, shard, start, limit)
            # What the queue holds now, after the await: a concurrent `take` (several claims in flight on one
            # container, as in a bulk issue) may have added the same candidates meanwhile, and one claim must never
            # name an item twice (DynamoDB refuses such a transaction).
            held = {candidate.key for candidate in queue}
            queue.extend(candidate for candidate in found if candidate.key not in held)
            if len(queue) >= count:
                return
