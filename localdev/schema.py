"""The table's definition, read from the `CodesTable` resource of `infra/template.yaml`.

The template is the one source of truth for the table: AWS gets it from `sam deploy`, local engines from
`create_table` here (`unique-codes create-table`, the tests, the benchmarks). Only tools call this module,
never the Lambda runtime, so PyYAML (a dev dependency) is imported on first use.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from codepool.errors import ConfigError
from localdev.paths import TEMPLATE_PATH as TEMPLATE_PATH  # re-exported: tests point it at a changed template

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TABLE_RESOURCE = "CodesTable"

# The parts of the template's table that define its shape; the rest (PITR, deletion protection, SSE) only
# exists on AWS. TTL is not part of CreateTable: `create_table` enables it afterwards.
_CREATE_TABLE_PROPERTIES = ("KeySchema", "AttributeDefinitions", "BillingMode", "GlobalSecondaryIndexes")


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The template (default: `infra/template.yaml`) as plain data; `!Ref X` reads as `{"Ref": "X"}`."""
    return copy.deepcopy(_load_template((path or TEMPLATE_PATH).resolve()))


@cache
def _load_template(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError as exc:
        raise ConfigError(f"reading {path} needs PyYAML: pip install -e '.[dev]'") from exc

    class CloudFormationLoader(yaml.SafeLoader):
        """A safe loader that also reads CloudFormation's intrinsic-function tags."""

    def construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    CloudFormationLoader.add_multi_constructor("!", construct_intrinsic)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"the table's definition lives in {path}, which does not exist; run from a checkout of the repository"
        ) from exc
    loader = CloudFormationLoader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise ConfigError(f"{path} is not a CloudFormation template")
    return document


def table_properties(path: Path | None = None) -> dict[str, Any]:
    """The `Properties` of the template's `CodesTable` resource."""
    resources = load_template(path).get("Resources") or {}
    table = resources.get(TABLE_RESOURCE)
    if not isinstance(table, dict) or table.get("Type") != "AWS::DynamoDB::Table":
        raise ConfigError(f"{path or TEMPLATE_PATH} has no AWS::DynamoDB::Table resource named {TABLE_RESOURCE}")
    properties: dict[str, Any] = table.get("Properties") or {}
    return properties


def ttl_attribute(path: Path | None = None) -> str | None:
    """The attribute the template's table expires items by, or None without TTL."""
    spec = table_properties(path).get("TimeToLiveSpecification") or {}
    return str(spec["AttributeName"]) if spec.get("Enabled") else None


def table_definition(table_name: str) -> dict[str, Any]:
    """Arguments of `CreateTable` for the single table, taken from the template."""
    properties = table_properties()
    definition: dict[str, Any] = {"TableName": table_name}
    for name in _CREATE_TABLE_PROPERTIES:
        if name in properties:
            definition[name] = properties[name]
    return definition


async def create_table(client: DynamoDBClient, table_name: str) -> bool:
    """Create the table (and its TTL) unless it exists; True if it was created. Safe to run repeatedly."""
    try:
        await client.create_table(**table_definition(table_name))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        return False
    waiter = client.get_waiter("table_exists")
    await waiter.wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    expires_by = ttl_attribute()
    if expires_by is not None:
        await client.update_time_to_live(
            TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": expires_by}
        )
    return True
