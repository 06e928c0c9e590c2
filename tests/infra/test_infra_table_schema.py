"""Code and template agree on the table: key names, TTL attribute; local tables are built from the template."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from codepool.dynamodb import keys
from codepool.errors import ConfigError
from localdev import schema


def test_key_names_match_the_template(template: dict[str, Any]) -> None:
    properties = template["Resources"][schema.TABLE_RESOURCE]["Properties"]
    key_schema = {entry["KeyType"]: entry["AttributeName"] for entry in properties["KeySchema"]}
    assert key_schema == {"HASH": keys.PARTITION_KEY, "RANGE": keys.SORT_KEY}
    types = {entry["AttributeName"]: entry["AttributeType"] for entry in properties["AttributeDefinitions"]}
    assert types == {keys.PARTITION_KEY: "S", keys.SORT_KEY: "S"}


def test_ttl_attribute_matches_the_template() -> None:
    assert schema.ttl_attribute() == keys.TTL_ATTRIBUTE


def test_table_definition_is_the_templates_table(template: dict[str, Any]) -> None:
    properties = template["Resources"][schema.TABLE_RESOURCE]["Properties"]
    definition = schema.table_definition("Local")
    assert definition["TableName"] == "Local"
    for name in ("KeySchema", "AttributeDefinitions", "BillingMode"):
        assert definition[name] == properties[name]
    assert definition.get("GlobalSecondaryIndexes") == properties.get("GlobalSecondaryIndexes")


def test_table_definition_follows_the_template_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = schema.TEMPLATE_PATH.read_text(encoding="utf-8").replace("AttributeName: expiresAt", "AttributeName: ttl")
    changed = tmp_path / "template.yaml"
    changed.write_text(text, encoding="utf-8")
    monkeypatch.setattr(schema, "TEMPLATE_PATH", changed)
    assert schema.ttl_attribute() == "ttl"


def test_missing_template_is_a_clear_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "infra" / "template.yaml"
    monkeypatch.setattr(schema, "TEMPLATE_PATH", missing)
    with pytest.raises(ConfigError, match=r"template\.yaml, which does not exist"):
        schema.table_definition("Local")


def test_template_without_the_table_is_a_config_error(tmp_path: Path) -> None:
    other = tmp_path / "template.yaml"
    other.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no AWS::DynamoDB::Table resource named CodesTable"):
        schema.table_properties(other)


def test_intrinsic_tags_read_as_their_long_form(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "A: !Ref X\nB: !GetAtt T.Arn\nC: !Sub ${X}-y\nD: !If [C, 1, !Ref AWS::NoValue]\nE: !Condition C\n",
        encoding="utf-8",
    )
    assert schema.load_template(path) == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["T", "Arn"]},
        "C": {"Fn::Sub": "${X}-y"},
        "D": {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]},
        "E": {"Condition": "C"},
    }


class RecordingClient:
    """A fake DynamoDB client that records what `create_table` asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def create_table(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("create_table", kwargs))
        return {}

    def get_waiter(self, name: str) -> RecordingClient:
        return self

    async def wait(self, **kwargs: Any) -> None:
        self.calls.append(("wait", kwargs))

    async def update_time_to_live(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("update_time_to_live", kwargs))
        return {}


def test_create_table_creates_the_templates_table_then_its_ttl() -> None:
    client = RecordingClient()
    assert asyncio.run(schema.create_table(client, "Local"))  # type: ignore[arg-type]
    assert [name for name, _ in client.calls] == ["create_table", "wait", "update_time_to_live"]
    assert client.calls[0][1] == schema.table_definition("Local")
    assert client.calls[2][1]["TimeToLiveSpecification"] == {"Enabled": True, "AttributeName": keys.TTL_ATTRIBUTE}
