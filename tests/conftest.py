"""Engines for the integration tests: AWS DynamoDB Local and moto server, one of each per test session."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from codepool.config import Settings
from codepool.dynamodb import DynamoDBRepository, create_table, open_client
from codepool.local.engines import DynamoDBLocal, EngineMissingError, MotoServer

EVENTS = Path(__file__).parent / "events"
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


def make_table(endpoint_url: str) -> Settings:
    settings = Settings(endpoint_url=endpoint_url, table_name=f"codes-{uuid.uuid4().hex[:12]}")

    async def create() -> None:
        async with AsyncExitStack() as stack:
            await create_table(await open_client(settings, stack), settings.table_name)

    asyncio.run(create())
    return settings


def drop_table(settings: Settings) -> None:
    async def drop() -> None:
        async with AsyncExitStack() as stack:
            client = await open_client(settings, stack)
            await client.delete_table(TableName=settings.table_name)

    asyncio.run(drop())


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


async def repository_for(settings: Settings, stack: AsyncExitStack) -> DynamoDBRepository:
    return DynamoDBRepository(await open_client(settings, stack), settings.table_name)


@pytest.fixture
async def repository(table: Settings) -> AsyncIterator[DynamoDBRepository]:
    async with AsyncExitStack() as stack:
        yield await repository_for(table, stack)
