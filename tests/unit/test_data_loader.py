"""botocore's data files through `PlainJSONFileLoader`: the same data as botocore's own loader, as plain dicts."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.loaders import Loader, create_loader

from codepool.config import Settings
from codepool.dynamodb.client import PlainJSONFileLoader, data_loader, open_client_in, preloaded_loader, session_for

READS: dict[str, Callable[[Loader], Any]] = {
    "endpoints": lambda loader: loader.load_data_with_path("endpoints")[0],
    "partitions": lambda loader: loader.load_data("partitions"),
    "sdk-default-configuration": lambda loader: loader.load_data("sdk-default-configuration"),
    "dynamodb service-2 (gzipped)": lambda loader: loader.load_service_model("dynamodb", "service-2"),
    "dynamodb endpoint rules": lambda loader: loader.load_service_model("dynamodb", "endpoint-rule-set-1"),
}


def _ordered_dicts(value: Any) -> int:
    if isinstance(value, dict):
        return isinstance(value, OrderedDict) + sum(_ordered_dicts(v) for v in value.values())
    if isinstance(value, list):
        return sum(_ordered_dicts(v) for v in value)
    return 0


@pytest.mark.parametrize("name", sorted(READS))
def test_every_file_a_client_reads_is_the_same_data_in_plain_dicts(name: str) -> None:
    read = READS[name]
    ours, botocores = read(data_loader()), read(create_loader())
    assert ours == botocores
    assert list(ours) == list(botocores)  # the same key order, too
    assert _ordered_dicts(botocores) > 0
    assert _ordered_dicts(ours) == 0


def test_aws_data_path_still_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "partitions.json").write_text(json.dumps({"partitions": [], "version": 1.1}), encoding="utf-8")
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    assert data_loader().load_data("partitions") == {"partitions": [], "version": 1.1}
    assert preloaded_loader().load_data("partitions") == {"partitions": [], "version": 1.1}


async def test_the_product_client_reads_through_the_plain_loader_and_leaves_validation_to_dynamodb() -> None:
    settings = Settings(endpoint_url="http://127.0.0.1:9", table_name="never-served", max_attempts=1)
    session = session_for(settings)
    assert isinstance(session._session.get_component("data_loader").file_loader, PlainJSONFileLoader)
    async with AsyncExitStack() as stack:
        client = await open_client_in(session, settings, stack)
        assert "TransactWriteItems" in client.meta.service_model.operation_names
        # With botocore's validation this is a ParamValidationError (a string for a boolean) before any request;
        # without it the request is sent, and nothing listens on port 9.
        with pytest.raises(EndpointConnectionError):
            await client.get_item(
                TableName="never-served",
                Key={"pk": {"S": "A"}},
                ConsistentRead="yes",  # type: ignore[arg-type]
            )
