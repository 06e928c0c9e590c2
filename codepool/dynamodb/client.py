"""One configured aiobotocore DynamoDB client: explicit timeouts, standard retries with jitter."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import aioboto3
from aiobotocore.config import AioConfig

from codepool.config import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

LOCAL_ACCESS_KEY = "local"


def client_config(settings: Settings) -> AioConfig:
    return AioConfig(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        # "standard" retries throttling, 5xx and transient connection errors with exponential backoff and
        # full jitter, and stops after max_attempts, so a brown-out becomes a bounded wait, not a hang.
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        tcp_keepalive=True,
        max_pool_connections=64,
    )


async def open_client(settings: Settings, stack: AsyncExitStack) -> DynamoDBClient:
    """A client that lives as long as `stack`; on Lambda that is the container's lifetime."""
    session = aioboto3.Session(region_name=settings.region)
    if settings.endpoint_url and not os.environ.get("AWS_ACCESS_KEY_ID"):
        # Local engines accept any credentials; without some, botocore would probe the instance metadata
        # service and stall for seconds.
        session = aioboto3.Session(
            aws_access_key_id=LOCAL_ACCESS_KEY, aws_secret_access_key=LOCAL_ACCESS_KEY, region_name=settings.region
        )
    client: DynamoDBClient = await stack.enter_async_context(
        session.client("dynamodb", endpoint_url=settings.endpoint_url, config=client_config(settings))
    )
    return client
