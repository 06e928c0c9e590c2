"""Engines for the integration tests: AWS DynamoDB Local and moto server, one of each per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from codepool.config import Settings
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal, EngineMissingError, MotoServer
from tests.support.tables import drop_table, make_table

ENGINES = ["dynamodb-local", "moto"]


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    try:
        engine = DynamoDBLocal().start()
    except EngineMissingError as exc:
        pytest.fail(f"the integration tests need AWS DynamoDB Local: {exc}", pytrace=False)
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    engine = MotoServer().start()
    yield engine
    engine.stop()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> DynamoDBLocal | MotoServer:
    fixture = "dynamodb_local" if request.param == "dynamodb-local" else "moto_server"
    found: DynamoDBLocal | MotoServer = request.getfixturevalue(fixture)
    return found


@pytest.fixture
def table(engine: DynamoDBLocal | MotoServer) -> Iterator[Settings]:
    """A fresh table on the engine under test; dropped afterwards."""
    settings = make_table(engine.endpoint_url)
    yield settings
    drop_table(settings)


@pytest.fixture
def local_table(dynamodb_local: DynamoDBLocal) -> Iterator[Settings]:
    """A fresh table on DynamoDB Local only: for races, which moto cannot isolate."""
    settings = make_table(dynamodb_local.endpoint_url)
    yield settings
    drop_table(settings)


@pytest.fixture
async def container(table: Settings) -> AsyncIterator[Container]:
    """The wired core on a fresh table (built-in pools only)."""
    async with Container.open(table, pools={}) as opened:
        yield opened
