"""Least privilege: each function's role grants exactly the DynamoDB actions its handler's code can call, each
only on the partition-key prefixes the code uses it for."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from code_actions import (
    KeyedAction,
    all_client_actions,
    handler_actions,
    handler_keyed_actions,
    index_names_in_code,
)

from codepool.dynamodb import keys

ROLES = {"IssuerFunction": "IssuerRole", "RefillerFunction": "RefillerRole"}
TABLE_ARN = {"Fn::GetAtt": ["CodesTable", "Arn"]}
PREFIXES = {keys.SLOT_PREFIX, keys.CODE_PREFIX, keys.IDEMPOTENCY_PREFIX}
LEADING_KEYS = "dynamodb:LeadingKeys"
# Every value of a multivalued key must match (a batch's every partition key); the DynamoDB guide says to use
# LeadingKeys with ForAllValues. StringLike for the `PREFIX*` patterns.
LEADING_KEYS_OPERATOR = "ForAllValues:StringLike"
ENCLOSING_OPERATION = "dynamodb:EnclosingOperation"
WRITE_ACTIONS = {
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:PartiQLDelete",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
}


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


def _dynamodb_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _statements(role) if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]


def _leading_key_patterns(statement: dict[str, Any]) -> list[str]:
    """The statement's LeadingKeys patterns; `["*"]` (any key) when it has none."""
    condition = statement.get("Condition", {})
    return _as_list(condition.get(LEADING_KEYS_OPERATOR, {}).get(LEADING_KEYS, ["*"]))


def _iam_like(pattern: str) -> re.Pattern[str]:
    """A StringLike pattern as a regex: `*` any run of characters, `?` any one."""
    return re.compile("".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern), re.DOTALL)


def _prefix(pattern: str) -> str:
    assert pattern.endswith("*"), f"{pattern!r} is not PREFIX*"
    assert not set("*?") & set(pattern[:-1]), f"{pattern!r} is not PREFIX*"
    return pattern[:-1]


def _transactional_only(statement: dict[str, Any]) -> bool:
    operations = statement.get("Condition", {}).get("ForAnyValue:StringEquals", {}).get(ENCLOSING_OPERATION)
    return operations is not None and _as_list(operations) == ["TransactWriteItems"]


def _handler(template: dict[str, Any], function: str) -> str:
    handler: str = template["Resources"][function]["Properties"]["Handler"]
    return handler


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


@pytest.mark.parametrize("role", sorted(ROLES.values()))
def test_every_dynamodb_statement_limits_the_partition_keys_to_item_prefixes(
    template: dict[str, Any], role: str
) -> None:
    statements = _dynamodb_statements(template["Resources"][role])
    assert statements
    for statement in statements:
        condition = statement.get("Condition", {})
        assert LEADING_KEYS in condition.get(LEADING_KEYS_OPERATOR, {}), f"{role}: {statement} has no LeadingKeys"
        # ForAnyValue would let one matching key carry a batch's others; a plain operator is for single values.
        assert [op for op, values in condition.items() if LEADING_KEYS in values] == [LEADING_KEYS_OPERATOR]
        patterns = _leading_key_patterns(statement)
        assert patterns, f"{role}: {statement} allows no partition key"
        assert {_prefix(p) for p in patterns} <= PREFIXES, f"{role}: {patterns}"


@pytest.mark.parametrize("function", sorted(ROLES))
def test_each_request_the_code_sends_is_allowed_by_one_statement(template: dict[str, Any], function: str) -> None:
    """ForAllValues is evaluated per statement: a batch naming CODE# and POOL# keys needs one statement allowing
    both prefixes (two statements with one each would refuse it)."""
    statements = _dynamodb_statements(template["Resources"][ROLES[function]])
    sent = handler_keyed_actions(_handler(template, function))
    assert sent, "found no DynamoDB request; the code scan is broken"
    for request in sent:
        assert request.prefixes, f"{function}: cannot tell which items {request.action} names; the scan is broken"
        assert request.prefixes <= PREFIXES
        allowing = [
            s
            for s in statements
            if request.action in _as_list(s["Action"])
            and request.prefixes <= {_prefix(p) for p in _leading_key_patterns(s)}
            and (request.transactional or not _transactional_only(s))
        ]
        assert allowing, f"{function}: no statement allows {request}"


@pytest.mark.parametrize("function", sorted(ROLES))
def test_each_granted_prefix_is_one_the_code_uses_for_that_action(template: dict[str, Any], function: str) -> None:
    used: dict[str, set[str]] = defaultdict(set)
    for request in handler_keyed_actions(_handler(template, function)):
        used[request.action] |= request.prefixes
    for statement in _dynamodb_statements(template["Resources"][ROLES[function]]):
        for action in _as_list(statement["Action"]):
            granted = {_prefix(p) for p in _leading_key_patterns(statement)}
            assert granted <= used[action], f"{function}: {action} granted on {sorted(granted - used[action])}"


def test_the_refiller_cannot_write_issued_or_idempotency_records(template: dict[str, Any]) -> None:
    """An issued record's existence is what makes a code issued: the refiller, which writes slots blind, must not
    be able to overwrite or delete one (nor an idempotency record)."""
    guarded = [keys.code_key("ABCD2345"), keys.idempotency_key("retry-1")]
    partitions = [key[keys.PARTITION_KEY]["S"] for key in guarded]
    assert {p.split("#")[0] + "#" for p in partitions} == {keys.CODE_PREFIX, keys.IDEMPOTENCY_PREFIX}
    for statement in _statements(template["Resources"]["RefillerRole"]):
        writes = WRITE_ACTIONS & set(_as_list(statement["Action"]))
        if not writes:
            continue
        for pattern in _leading_key_patterns(statement):
            reached = [p for p in partitions if _iam_like(pattern).fullmatch(p)]
            assert not reached, f"RefillerRole may {sorted(writes)} on {reached} ({pattern!r})"


@pytest.mark.parametrize("function", sorted(ROLES))
def test_actions_sent_only_inside_transactions_are_granted_only_there(template: dict[str, Any], function: str) -> None:
    """The issuer puts records only in the claim transaction: a bare PutItem (an unconditional overwrite of an
    issued record) is refused. An action the code also sends on its own (DeleteItem) cannot be limited so."""
    sent: list[KeyedAction] = handler_keyed_actions(_handler(template, function))
    only_in_transactions = {r.action for r in sent} - {r.action for r in sent if not r.transactional}
    limited = {
        action
        for statement in _dynamodb_statements(template["Resources"][ROLES[function]])
        if _transactional_only(statement)
        for action in _as_list(statement["Action"])
    }
    assert limited == only_in_transactions
    for statement in _dynamodb_statements(template["Resources"][ROLES[function]]):
        actions = set(_as_list(statement["Action"]))
        assert not (actions & only_in_transactions) or _transactional_only(statement), statement
