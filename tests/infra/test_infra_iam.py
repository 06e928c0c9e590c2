"""Least privilege: each function's role grants exactly the DynamoDB actions its handler's code can call."""

from __future__ import annotations

from typing import Any

import pytest
from code_actions import all_client_actions, handler_actions, index_names_in_code

ROLES = {"IssuerFunction": "IssuerRole", "RefillerFunction": "RefillerRole"}
TABLE_ARN = {"Fn::GetAtt": ["CodesTable", "Arn"]}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement for policy in role["Properties"]["Policies"] for statement in policy["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _granted_dynamodb_actions(role: dict[str, Any]) -> set[str]:
    return {
        action
        for statement in _statements(role)
        for action in _as_list(statement["Action"])
        if action.startswith("dynamodb:")
    }


def _allowed_table_resources(template: dict[str, Any]) -> list[Any]:
    """The table's ARN and, for each index the template declares, that index's ARN."""
    properties = template["Resources"]["CodesTable"]["Properties"]
    indexes = [index["IndexName"] for index in properties.get("GlobalSecondaryIndexes", [])]
    return [TABLE_ARN, *({"Fn::Sub": f"${{CodesTable.Arn}}/index/{name}"} for name in indexes)]


@pytest.mark.parametrize("function", sorted(ROLES))
def test_role_grants_exactly_the_dynamodb_actions_the_handler_calls(template: dict[str, Any], function: str) -> None:
    resources = template["Resources"]
    handler = resources[function]["Properties"]["Handler"]
    used = handler_actions(handler)
    granted = _granted_dynamodb_actions(resources[ROLES[function]])
    assert used, f"found no DynamoDB call reachable from {handler}; the code scan is broken"
    assert not used - granted, f"{function} calls {sorted(used - granted)} without a grant"
    assert not granted - used, f"{function} is granted {sorted(granted - used)}, which its code never calls"


def test_every_client_call_in_the_repository_is_reachable_from_a_handler(template: dict[str, Any]) -> None:
    """Guards the scan itself: a call no handler reaches is either dead code or a reachability miss."""
    reached = set().union(*(handler_actions(template["Resources"][f]["Properties"]["Handler"]) for f in ROLES))
    assert all_client_actions() == reached


@pytest.mark.parametrize("function", sorted(ROLES))
def test_function_uses_its_own_role_and_no_sam_policies(template: dict[str, Any], function: str) -> None:
    properties = template["Resources"][function]["Properties"]
    assert properties["Role"] == {"Fn::GetAtt": [ROLES[function], "Arn"]}
    assert "Policies" not in properties, "SAM policy templates grant more than the code uses"
    role = template["Resources"][ROLES[function]]["Properties"]
    assert "ManagedPolicyArns" not in role
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]


@pytest.mark.parametrize("role", sorted(ROLES.values()))
def test_dynamodb_statements_name_only_the_table_and_its_indexes(template: dict[str, Any], role: str) -> None:
    allowed = _allowed_table_resources(template)
    for statement in _statements(template["Resources"][role]):
        if any(action.startswith("dynamodb:") for action in _as_list(statement["Action"])):
            assert all(action.startswith("dynamodb:") for action in _as_list(statement["Action"]))
            for resource in _as_list(statement["Resource"]):
                assert resource in allowed, f"{role}: DynamoDB access to {resource}"


@pytest.mark.parametrize("role", sorted(ROLES.values()))
def test_no_wildcards_and_only_resources_of_this_stack(template: dict[str, Any], role: str) -> None:
    for statement in _statements(template["Resources"][role]):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            assert not set("*?") & set(action), f"{role}: wildcard action {action}"
        for resource in _as_list(statement["Resource"]):
            # A literal string could be "*" or another account's ARN; an intrinsic names a resource of this stack.
            assert isinstance(resource, dict), f"{role}: literal resource {resource!r}"
            (function,) = resource
            assert function in {"Fn::GetAtt", "Ref", "Fn::Sub"}
            assert resource[function][0] in template["Resources"] or "${CodesTable.Arn}" in str(resource)


def test_table_indexes_are_the_ones_the_code_queries(template: dict[str, Any]) -> None:
    properties = template["Resources"]["CodesTable"]["Properties"]
    declared = {index["IndexName"] for index in properties.get("GlobalSecondaryIndexes", [])}
    declared |= {index["IndexName"] for index in properties.get("LocalSecondaryIndexes", [])}
    assert declared == index_names_in_code()
