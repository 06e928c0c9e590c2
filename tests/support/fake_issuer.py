"""`issuer.app.container` over the in-memory fake: the issuer's handler, routing and error handlers, no DynamoDB."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

from codepool.components import Components
from codepool.config import PoolConfig, Settings
from codepool.repository import CodeRepository
from codepool.runtime import Container, ContainerHolder
from tests.support.fakes import InMemoryRepository

T = TypeVar("T")


@dataclass
class FakeRuntime:
    """What the issuer's routes use of a `Container`: its components, repository and pools (here, no client)."""

    components: Components

    @property
    def repository(self) -> CodeRepository:
        return self.components.repository

    @property
    def pools(self) -> Mapping[str, PoolConfig]:
        return self.components.pools


class FakeContainerHolder(ContainerHolder):
    """`issuer.app.container` over the in-memory fake: default settings, the given pools, one warm runtime.

    `ContainerHolder` has no seam for another `Container`, and `Container` wants a DynamoDB client and repository,
    so `run` hands the routes a `FakeRuntime` in its place (a route using more of it fails with an AttributeError,
    which the handler answers 500, failing the tests that use it)."""

    def __init__(self, repository: InMemoryRepository, pools: Mapping[str, PoolConfig]) -> None:
        super().__init__()
        self._fake_pools = pools
        self._runtime = FakeRuntime(Components.over(repository, pools))

    @property
    def settings(self) -> Settings:
        return Settings()

    @property
    def pools(self) -> Mapping[str, PoolConfig]:
        return self._fake_pools

    def run(self, work: Callable[[Container], Awaitable[T]]) -> T:
        async def scheduled() -> T:
            return await work(cast(Container, self._runtime))

        return asyncio.run(scheduled())

    def close(self) -> None:
        pass
