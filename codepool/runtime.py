"""What a Lambda container keeps between warm invocations: one event loop, one client, the prefetched candidates.

Created lazily on the first invocation, so reading the environment, opening the client and generating codes
all happen inside a handler (SnapStart-safe) and tests can configure the environment first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import Any, TypeVar

from codepool.candidates import CandidatePrefetcher
from codepool.config import PoolConfig, Settings, load_pools
from codepool.dynamodb import DynamoDBRepository, open_client

T = TypeVar("T")


class Container:
    def __init__(self, settings: Settings | None = None, pools: dict[str, PoolConfig] | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.pools = pools if pools is not None else load_pools(self.settings.pools_file)
        self._runner = asyncio.Runner()
        self._stack = AsyncExitStack()
        self._repository: DynamoDBRepository | None = None
        self._prefetcher: CandidatePrefetcher | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one invocation's work on the container's loop (the loop survives between invocations)."""
        return self._runner.run(coroutine)

    async def repository(self) -> DynamoDBRepository:
        if self._repository is None:
            client = await open_client(self.settings, self._stack)
            self._repository = DynamoDBRepository(client, self.settings.table_name)
        return self._repository

    async def prefetcher(self) -> CandidatePrefetcher:
        if self._prefetcher is None:
            self._prefetcher = CandidatePrefetcher(await self.repository())
        return self._prefetcher

    def close(self) -> None:
        self._runner.run(self._stack.aclose())
        self._runner.close()
        self._repository = None
        self._prefetcher = None


class ContainerHolder(threading.local):
    """The module-level container of one handler module.

    Per thread: on Lambda there is one thread per container; `unique-codes serve` runs several worker
    threads, each its own "container" with its own loop and client, as Lambda runs concurrent requests.
    `reset` lets tools and tests reconfigure it.
    """

    def __init__(self) -> None:
        self._container: Container | None = None

    def get(self) -> Container:
        if self._container is None:
            self._container = Container()
        return self._container

    def reset(self, container: Container | None = None) -> None:
        if self._container is not None:
            self._container.close()
        self._container = container
