"""The core's parts, wired: what every use case is given instead of its pieces one by one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from codepool.candidates import CandidatePrefetcher
from codepool.config import PoolConfig
from codepool.queries import PoolStatsCache
from codepool.repository import CodeRepository


@dataclass(frozen=True, slots=True)
class Components:
    """The pools, the storage port, and this container's candidate prefetcher and pool counts (which read through
    the port)."""

    pools: Mapping[str, PoolConfig]
    repository: CodeRepository
    prefetcher: CandidatePrefetcher
    stats: PoolStatsCache

    @classmethod
    def over(cls, repository: CodeRepository, pools: Mapping[str, PoolConfig]) -> Components:
        """Components around `repository`, with a fresh prefetcher and counts: one of each per container."""
        return cls(
            pools=pools,
            repository=repository,
            prefetcher=CandidatePrefetcher(repository),
            stats=PoolStatsCache(repository),
        )
