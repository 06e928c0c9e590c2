"""Fresh tables on a running engine, and reading a whole table back."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from codepool.config import Settings
from codepool.dynamodb.client import open_client
from codepool.dynamodb.keys import PARTITION_KEY, code_of_record, is_code_record, is_slot
from localdev.schema import create_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

Item = dict[str, Any]


def make_table(endpoint_url: str) -> Settings:
    """A new table, named uniquely, on the engine at `endpoint_url`; its settings."""
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


async def scan_table(client: DynamoDBClient, table_name: str) -> list[Item]:
    """Every item of the table (consistent read)."""
    items: list[Item] = []
    arguments: Item = {"TableName": table_name, "ConsistentRead": True}
    while True:
        page = await client.scan(**arguments)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def issued_records(client: DynamoDBClient, table_name: str) -> dict[str, Item]:
    """Issued-code records by canonical code."""
    return {
        code_of_record(item[PARTITION_KEY]["S"]): item
        for item in await scan_table(client, table_name)
        if is_code_record(item[PARTITION_KEY]["S"])
    }


async def slot_items(client: DynamoDBClient, table_name: str) -> list[Item]:
    return [item for item in await scan_table(client, table_name) if is_slot(item[PARTITION_KEY]["S"])]
