"""botocore's data files through `PlainJSONFileLoader`: the same data as botocore's own loader, as plain dicts."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.loaders import Loader, create_loader

from codepool.dynamodb.client import data_loader, preloaded_loader

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
