"""One configured aiobotocore DynamoDB client: explicit timeouts, standard retries with jitter."""

from __future__ import annotations

import gzip
import json
import os
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import aioboto3
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.loaders import JSONFileLoader, Loader

from codepool.config import Settings

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient


def client_config(settings: Settings) -> AioConfig:
    return AioConfig(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        # "standard" retries throttling, 5xx and transient connection errors with exponential backoff and
        # full jitter, and stops after max_attempts, so a brown-out becomes a bounded wait, not a hang.
        retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
        tcp_keepalive=True,
        max_pool_connections=64,
        # botocore re-checks every parameter against the service model before sending: a quarter of the client's
        # CPU per code in a refill (benchmarks/README.md), for requests this package builds itself and DynamoDB
        # validates again on arrival (a malformed one is still answered with a ValidationException).
        parameter_validation=False,
    )


async def open_client(settings: Settings, stack: AsyncExitStack) -> DynamoDBClient:
    """A client that lives as long as `stack`; on Lambda that is the container's lifetime."""
    return await open_client_in(session_for(settings), settings, stack)


class PlainJSONFileLoader(JSONFileLoader):
    """botocore's data files parsed into plain dicts: botocore builds an `OrderedDict` for every JSON object, which
    made parsing the three files a DynamoDB client needs (endpoints.json is 1.2 MB) about twice as slow, ~12 ms
    of every cold start; a dict keeps the order too."""

    def load_file(self, file_path: str) -> Any:
        for extension, opener in ((".json", open), (".json.gz", gzip.open)):
            path = file_path + extension
            if os.path.isfile(path):
                with opener(path, "rb") as file:
                    return json.loads(file.read())
        return None


def data_loader() -> Loader:
    """botocore's loader (the same search path, `AWS_DATA_PATH` included) with `PlainJSONFileLoader`."""
    extra = os.environ.get("AWS_DATA_PATH")
    paths = [os.path.expanduser(os.path.expandvars(path)) for path in extra.split(os.pathsep)] if extra else None
    return Loader(extra_search_paths=paths, file_loader=PlainJSONFileLoader())


def session_for(settings: Settings, loader: Loader | None = None) -> aioboto3.Session:
    """A new session; with `loader` (from `preloaded_loader`), its clients read none of botocore's data files."""
    botocore_session = AioSession()
    botocore_session.register_component("data_loader", loader or data_loader())
    credentials = settings.local_credentials()
    return aioboto3.Session(
        region_name=settings.region,
        aws_access_key_id=credentials.get("aws_access_key_id"),
        aws_secret_access_key=credentials.get("aws_secret_access_key"),
        botocore_session=botocore_session,
    )


def preloaded_loader() -> Loader:
    """A botocore data loader that already holds what creating a DynamoDB client reads: the service model, its
    endpoint rules, the partitions and the SDK's default configuration (parsing them is most of the ~60 ms a
    client takes). Parsed files only: no session, credentials, connection or random state, so it can be built
    before a SnapStart snapshot and shared by the sessions created after restore."""
    loader = data_loader()
    # The exact calls (and argument forms) a session and its client make: the loader caches by them.
    loader.load_data_with_path("endpoints")
    loader.load_data("sdk-default-configuration")
    loader.load_data("partitions")
    for model in ("service-2", "endpoint-rule-set-1"):
        loader.load_service_model("dynamodb", model, api_version=None)
    return loader


async def open_client_in(session: aioboto3.Session, settings: Settings, stack: AsyncExitStack) -> DynamoDBClient:
    """A client of an existing session (many clients of one session share the loaded service model)."""
    client: DynamoDBClient = await stack.enter_async_context(
        session.client("dynamodb", endpoint_url=settings.endpoint_url, config=client_config(settings))
    )
    return client
