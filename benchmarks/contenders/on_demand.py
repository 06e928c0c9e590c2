"""The demo's algorithm in Python: draw a random code, `PutItem` it if absent, draw again on a collision.

Async like ours, with one loop and one client per container and the same client configuration, so the
comparison is between algorithms: no pool, no refiller, one request per code while the keyspace is empty,
and about 1 / (1 - fill) requests per code as it fills.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from benchmarks.contenders import created
from benchmarks.contenders.observed import observed
from codepool.config import DEFAULT_POOL, Settings
from codepool.dynamodb.client import open_client
from codepool.dynamodb.keys import code_key
from codepool.formats import CodeFormat
from codepool.model import utc_timestamp

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

MAX_ATTEMPTS = 10_000
"""Enough for a 99.9 % full keyspace; the demo retried without bound."""

# The demo's `attribute_not_exists(Code)`, on our table's key: the code was never issued.
CODE_NEVER_ISSUED = "attribute_not_exists(pk)"


class OnDemandIssuer:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def issue(self, fmt: CodeFormat, pool: str) -> tuple[dict[str, str], int]:
        """A new code's record and how many conditional writes it took."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            code = fmt.generate()
            key = fmt.canonical(code)
            record = {"code": code, "pool": pool, "issuedAt": utc_timestamp(time.time())}
            item = {**code_key(key), **{k: {"S": v} for k, v in record.items()}}
            try:
                await self._client.put_item(TableName=self._table, Item=item, ConditionExpression=CODE_NEVER_ISSUED)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
                continue
            return record, attempt
        raise RuntimeError(f"no free code in {MAX_ATTEMPTS} attempts: the keyspace is full")


class _Container:
    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.runner = asyncio.Runner()
        self.stack = AsyncExitStack()
        self.issuer: OnDemandIssuer | None = None

    async def get_issuer(self) -> OnDemandIssuer:
        if self.issuer is None:
            client = await open_client(self.settings, self.stack)
            self.issuer = OnDemandIssuer(client, self.settings.table_name)
        return self.issuer


_container: _Container | None = None


def _issue(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    global _container
    if _container is None:
        _container = _Container()
    container = _container

    async def issue() -> dict[str, str]:
        record, _ = await (await container.get_issuer()).issue(DEFAULT_POOL.format, DEFAULT_POOL.name)
        return record

    return DEFAULT_POOL.name, created(container.runner.run(issue()))


lambda_handler = observed("on_demand", _issue)
