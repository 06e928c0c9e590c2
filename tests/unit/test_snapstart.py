"""SnapStart's hooks: nothing connected or random is in the snapshot, and a restored container serves at once.

The hooks are called as Lambda calls them (`before_snapshot` after the import, `after_restore` in each restored
container), on a fresh holder; the first invocation after restore runs over the in-memory fake. No network: creating
a client opens no connection, and the fake answers the claim.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import secrets
import socket
import sys
import types
import uuid
from collections.abc import Iterator
from typing import Any

import aioboto3
import pytest
from aiobotocore.client import AioBaseClient
from aiobotocore.session import AioSession
from botocore.loaders import JSONFileLoader

import issuer.app
import refiller.app
from codepool.components import Components
from codepool.config import DEFAULT_POOL
from codepool.refilling import refill_pool
from codepool.runtime import ContainerHolder, register_snapshot_hooks
from tests.support.events import call, rest
from tests.support.fakes import InMemoryRepository

CROSSING = (asyncio.AbstractEventLoop, socket.socket, AioBaseClient, AioSession, aioboto3.Session)
"""What must never be in a snapshot: an event loop, a socket, a client or a session."""


def live(kinds: tuple[type, ...]) -> int:
    gc.collect()
    return sum(isinstance(thing, kinds) for thing in gc.get_objects())


def network_sockets() -> int:
    """Live TCP sockets (an event loop's own self-pipe is a Unix socket pair)."""
    gc.collect()
    return sum(
        isinstance(thing, socket.socket) and thing.family in (socket.AF_INET, socket.AF_INET6)
        for thing in gc.get_objects()
    )


def no_randomness(*_: Any, **__: Any) -> Any:
    raise AssertionError("randomness drawn before the snapshot: every restored container would share it")


@pytest.fixture
def holder(monkeypatch: pytest.MonkeyPatch) -> Iterator[ContainerHolder]:
    """A fresh `issuer.app.container` on an endpoint nothing listens on (no request may reach it)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    monkeypatch.setenv("TABLE_NAME", "snapstart-test")
    monkeypatch.delenv("POOLS_FILE", raising=False)
    fresh = ContainerHolder()
    monkeypatch.setattr(issuer.app, "container", fresh)
    yield fresh
    fresh.close()


def test_before_snapshot_builds_the_static_parts_and_nothing_connected_or_random(
    holder: ContainerHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module, name in ((os, "urandom"), (secrets, "randbelow"), (secrets, "SystemRandom"), (uuid, "uuid4")):
        monkeypatch.setattr(module, name, no_randomness)
    state, crossing = random.getstate(), live(CROSSING)

    issuer.app.before_snapshot()

    assert random.getstate() == state, "the hook drew from `random`"
    assert live(CROSSING) == crossing, "the hook created a loop, socket, session or client"
    assert (holder._runner, holder._container, holder._stack) == (None, None, None)
    assert None not in (holder._settings, holder._pools, holder._loader)
    assert issuer.app._resolvers, "the resolvers belong in the snapshot"
    module_state = [*vars(issuer.app).values(), *vars(holder).values()]
    assert not [value for value in module_state if isinstance(value, CROSSING)]
    assert not [v for v in module_state if isinstance(v, random.Random) and not isinstance(v, random.SystemRandom)]


def test_after_restore_reseeds_opens_the_client_and_the_first_invocation_works(
    holder: ContainerHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer.app.before_snapshot()
    snapshot_state, sockets = random.getstate(), network_sockets()

    with monkeypatch.context() as reads:
        reads.setattr(JSONFileLoader, "load_file", no_file_reads)
        issuer.app.after_restore()

    assert random.getstate() != snapshot_state, "restored containers would share botocore's retry jitter"
    assert holder._runner is not None
    assert holder._container is not None
    client = holder._container.client
    assert network_sockets() == sockets, "the hook connected; the first request does"

    repository = InMemoryRepository()
    asyncio.run(refill_pool(repository, DEFAULT_POOL, 20))
    holder._container.repository = repository  # type: ignore[assignment]
    holder._container.components = Components.over(repository, holder._container.pools)
    status, _, body = call(rest("POST", "/codes", "{}"))

    assert status == 201
    assert list(repository.issued) == [DEFAULT_POOL.format.canonical(body["code"])]
    assert holder._container.client is client, "the first invocation made a client of its own"


def no_file_reads(*_: Any, **__: Any) -> Any:
    raise AssertionError("botocore read a data file after restore: the snapshot should hold the parsed model")


def test_the_hooks_register_with_snapshot_restore_py_where_it_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, list[Any]] = {"before": [], "after": []}
    fake = types.SimpleNamespace(
        register_before_snapshot=registered["before"].append, register_after_restore=registered["after"].append
    )
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)

    assert register_snapshot_hooks(issuer.app.before_snapshot, issuer.app.after_restore)
    assert registered == {"before": [issuer.app.before_snapshot], "after": [issuer.app.after_restore]}


def test_without_snapshot_restore_py_the_handlers_still_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # an import of it raises ImportError

    assert not register_snapshot_hooks(issuer.app.before_snapshot, issuer.app.after_restore)
    for module in (issuer.app, refiller.app):
        assert callable(module.before_snapshot)
        assert callable(module.after_restore)
