"""The composition root: settings -> client -> repository -> prefetcher + pools, wired in one place.

`Container.open()` is the async form every tool uses (CLI, tests, benchmarks): the wired components for as long
as the `async with` lasts. `ContainerHolder` is what a Lambda handler module keeps between warm invocations:
one event loop and one `Container`, both created on the first invocation, so reading the environment,
opening the client and generating codes all happen inside a handler (SnapStart-safe) and tests can configure
the environment first. Under SnapStart its two hooks split that work: `prepare_snapshot` builds what is static
into the snapshot, `restore` creates the loop, the client and fresh random state in each restored container.
"""

from __future__ import annotations

import asyncio
import importlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, TypeVar

from codepool.components import Components
from codepool.config import PoolConfig, Settings, load_pools
from codepool.dynamodb.client import open_client_in, preloaded_loader, session_for
from codepool.dynamodb.repository import DynamoDBRepository
from codepool.model import RefillCarry

if TYPE_CHECKING:
    import aioboto3
    from botocore.loaders import Loader
    from types_aiobotocore_dynamodb import DynamoDBClient

T = TypeVar("T")


class Container:
    """One container's wired core: its settings, pools, DynamoDB client, repository and prefetcher."""

    def __init__(
        self,
        settings: Settings,
        client: DynamoDBClient,
        repository: DynamoDBRepository,
        pools: Mapping[str, PoolConfig],
    ) -> None:
        self.settings = settings
        self.client = client
        """The container's one DynamoDB client, for tools and tests that read the table directly."""
        self.repository = repository
        self.components = Components.over(repository, pools)
        self.refill_carry = RefillCarry()
        """What a refill left unresolved for the next refill in this container (`codepool.refilling`)."""

    @property
    def pools(self) -> Mapping[str, PoolConfig]:
        return self.components.pools

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        settings: Settings | None = None,
        pools: Mapping[str, PoolConfig] | None = None,
        *,
        session: aioboto3.Session | None = None,
    ) -> AsyncIterator[Container]:
        """Settings from the environment unless given, pools from `settings.pools_file` unless given.

        `session`: many containers in one process (the benchmarks' workers) can share one session, which loads
        the service model once; each container still has a client, connections and caches of its own.
        """
        settings = settings or Settings.from_env()
        pools = pools if pools is not None else load_pools(settings.pools_file)
        async with AsyncExitStack() as stack:
            client = await open_client_in(session or session_for(settings), settings, stack)
            yield cls(settings, client, DynamoDBRepository(client, settings.table_name), pools)


class ContainerHolder:
    """A handler module's per-process state: one event loop and one `Container`, created on first use.

    On Lambda a process is a container; `unique-codes serve` runs each emulated container in a process of its
    own. `close` ends both (on shutdown, or when a test reconfigures the environment).
    """

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._pools: Mapping[str, PoolConfig] | None = None
        self._runner: asyncio.Runner | None = None
        self._stack: AsyncExitStack | None = None
        self._container: Container | None = None
        self._loader: Loader | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
        return self._settings

    @property
    def pools(self) -> Mapping[str, PoolConfig]:
        """The configured pools; reading them needs no connection."""
        if self._pools is None:
            self._pools = load_pools(self.settings.pools_file)
        return self._pools

    def run(self, work: Callable[[Container], Awaitable[T]]) -> T:
        """Run one invocation's work on the container's loop (the loop survives between invocations)."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        # The loop's own run rather than `Runner.run`, which swaps a SIGINT handler in and out on every call
        # (~20 µs per warm invocation) for the sake of Ctrl-C in a terminal.
        return self._runner.get_loop().run_until_complete(self._with_container(work))

    async def _with_container(self, work: Callable[[Container], Awaitable[T]]) -> T:
        if self._container is None:
            stack = AsyncExitStack()
            session = session_for(self.settings, self._loader)
            self._container = await stack.enter_async_context(
                Container.open(self.settings, self.pools, session=session)
            )
            self._stack = stack
        return await work(self._container)

    def prepare_snapshot(self) -> None:
        """SnapStart's before-snapshot hook: build into the snapshot what every restored container would build the
        same way — settings, pools (their blocklist patterns compiled), botocore's parsed service data. Creates no
        loop, session, client or connection and draws nothing random, so a snapshot holds none of them."""
        for pool in self.pools.values():
            pool.format.code_for(0)  # deterministic; compiles the format's blocklist pattern on first use
        self._loader = preloaded_loader()

    def restore(self) -> None:
        """SnapStart's after-restore hook: state of this container's own, before its first request — a reseeded
        `random` (every restored container starts from the snapshot's copy, and botocore's retry jitter draws from
        it), the event loop, the session and the client (no connection yet: that is the first request's)."""
        random.seed()
        self.run(_opened)

    def close(self) -> None:
        """Close the client and the loop; the next `run` starts afresh from the environment."""
        if self._runner is not None:
            if self._stack is not None:
                self._runner.run(self._stack.aclose())
            self._runner.close()
        self._settings = self._pools = self._runner = self._stack = self._container = self._loader = None


async def _opened(container: Container) -> None:
    """No work: running it opens the holder's container."""


def register_snapshot_hooks(before_snapshot: Callable[[], None], after_restore: Callable[[], None]) -> bool:
    """Register SnapStart's runtime hooks with `snapshot_restore_py`, which Lambda's Python managed runtimes provide.
    Elsewhere (tests, `unique-codes serve`, the benchmarks) it is usually absent and nothing is registered: no
    snapshot is ever taken there. Whether the hooks were registered."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return False
    hooks.register_before_snapshot(before_snapshot)
    hooks.register_after_restore(after_restore)
    return True
