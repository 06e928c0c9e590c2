"""Which DynamoDB IAM actions each Lambda handler can reach, read from the source code (not a hand-made list).

1. In `codepool/dynamodb/repository.py`, every `self._client.<method>` (called, or passed on as in
   `partial(self._client.query, ...)`) that botocore knows as a DynamoDB operation is one; its IAM action is
   the operation's name (`batch_get_item` -> `dynamodb:BatchGetItem`), except for transactions, which IAM
   authorises per item: the `Put`/`Delete`/`Update`/`ConditionCheck` entries the method builds.
2. From each handler module, every function whose name is called or referenced is followed, across the handler's module
   and the core package. Matching by name over-approximates (any `claim` reaches every `claim`), which
   errs towards demanding a grant, never towards missing one.
3. Which items each action touches, as partition-key prefixes (for `dynamodb:LeadingKeys`): a key builder of
   `codepool/dynamodb/keys.py` is a function whose value starts with a `*_PREFIX` constant (`CODE_PREFIX + key`,
   `f"{SLOT_PREFIX}..."`), directly or through another builder. An operation touches the prefixes of the
   builders its method uses (itself or through the adapter's module-level helpers, such as
   `codepool/dynamodb/items.py`'s `record_item`) and those of the methods reached by the same handler that call
   it (`existing_among` builds the keys `_existing` sends); a transaction item, those of the builders inside
   its own entry. Over-approximate again: more prefixes demand a wider grant, never a missing one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session

REPO_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY_MODULE = REPO_ROOT / "codepool" / "dynamodb" / "repository.py"
KEYS_MODULE = REPO_ROOT / "codepool" / "dynamodb" / "keys.py"
REPOSITORY_CLASS = "DynamoDBRepository"

TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Delete": "dynamodb:DeleteItem",
    "Update": "dynamodb:UpdateItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
TRANSACTIONS = {"transact_write_items", "transact_get_items"}


def iam_action(client_method: str) -> str:
    return "dynamodb:" + "".join(part.capitalize() for part in client_method.split("_"))


def _functions(tree: ast.AST) -> Iterable[ast.FunctionDef | ast.AsyncFunctionDef]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef))


def _referenced_names(function: ast.AST) -> set[str]:
    """Names a function calls or passes on (`partial(self._write_slots, ...)` reaches `_write_slots`)."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
    return names


@cache
def _dynamodb_operations() -> frozenset[str]:
    """The DynamoDB API's operation names (`BatchGetItem`, ...), from botocore's service model."""
    return frozenset(botocore.session.get_session().get_service_model("dynamodb").operation_names)


def _is_client_call(node: ast.AST) -> str | None:
    """`self._client.<method>`, called or passed on (`partial(self._client.query, ...)`) -> method, if it is an
    API operation (not `close`, `meta` or `get_paginator`)."""
    if not isinstance(node, ast.Attribute):
        return None
    owner = node.value
    if not (isinstance(owner, ast.Attribute) and owner.attr == "_client" and isinstance(owner.value, ast.Name)):
        return None
    if owner.value.id != "self" or iam_action(node.attr).removeprefix("dynamodb:") not in _dynamodb_operations():
        return None
    return node.attr


def direct_actions_by_method() -> dict[str, set[str]]:
    """Repository method -> the IAM actions of the client calls written in its own body."""
    tree = ast.parse(REPOSITORY_MODULE.read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for function in _functions(tree):
        actions: set[str] = set()
        transaction_items = {
            key.value
            for node in ast.walk(function)
            if isinstance(node, ast.Dict)
            for key in node.keys
            if isinstance(key, ast.Constant) and key.value in TRANSACTION_ITEM_ACTIONS
        }
        for node in ast.walk(function):
            method = _is_client_call(node)
            if method is None:
                continue
            if method in TRANSACTIONS:
                if not transaction_items:
                    raise AssertionError(f"{function.name}: {method} without Put/Delete/Update/ConditionCheck items")
                if method == "transact_get_items":
                    actions.add("dynamodb:GetItem")
                else:
                    actions.update(TRANSACTION_ITEM_ACTIONS[item] for item in transaction_items)
            else:
                actions.add(iam_action(method))
        found[function.name] = actions
    return found


def all_client_actions() -> set[str]:
    """Every IAM action any client call in the repository module needs."""
    return set().union(*direct_actions_by_method().values())


Definition = tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]


def _definitions(entry_package: str) -> dict[str, list[Definition]]:
    """Function name -> its definitions, over the core package and one handler's own package: the artifact ships
    both handlers, but neither imports the other, so a name the refiller defines (say `work`) must not make the
    issuer reach it."""
    definitions: dict[str, list[Definition]] = {}
    for package in ("codepool", entry_package):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for function in _functions(ast.parse(path.read_text(encoding="utf-8"))):
                definitions.setdefault(function.name, []).append((path, function))
    return definitions


def reached_repository_functions(handler: str) -> set[str]:
    """`issuer.app.lambda_handler` -> the names of the repository module's functions its module reaches."""
    module_path = REPO_ROOT / Path(*handler.split(".")[:-1]).with_suffix(".py")
    definitions = _definitions(handler.split(".")[0])
    # Every function of the handler module is an entry point: routes are registered by decorators.
    pending: list[Definition] = [
        (module_path, function) for function in _functions(ast.parse(module_path.read_text(encoding="utf-8")))
    ]
    seen: set[tuple[Path, int]] = set()
    reached: set[str] = set()
    while pending:
        path, function = pending.pop()
        if (path, function.lineno) in seen:
            continue
        seen.add((path, function.lineno))
        if path == REPOSITORY_MODULE:
            reached.add(function.name)
        for name in _referenced_names(function):
            pending.extend(definitions.get(name, []))
    return reached


def handler_actions(handler: str) -> set[str]:
    """`issuer.app.lambda_handler` -> the DynamoDB IAM actions reachable from the handler's module."""
    per_method = direct_actions_by_method()
    return set().union(*(per_method.get(name, set()) for name in reached_repository_functions(handler)))


def index_names_in_code() -> set[str]:
    """Index names the repository queries (`IndexName="..."`)."""
    return set(re.findall(r"IndexName\s*[=:]\s*[\"']([^\"']+)", REPOSITORY_MODULE.read_text(encoding="utf-8")))


def key_builder_prefixes() -> dict[str, set[str]]:
    """Key builder of `codepool/dynamodb/keys.py` -> the prefixes (the constants' values) its keys start with."""
    tree = ast.parse(KEYS_MODULE.read_text(encoding="utf-8"))
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.endswith("_PREFIX")
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }

    def leading_constant(node: ast.AST) -> str | None:
        """`PREFIX + x` or `f"{PREFIX}..."` -> PREFIX: a value that starts with the constant."""
        first: ast.AST | None = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            first = node.left
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.FormattedValue):
            first = node.values[0].value
        return first.id if isinstance(first, ast.Name) and first.id in constants else None

    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    found = {
        function.name: {constants[name] for node in ast.walk(function) if (name := leading_constant(node))}
        for function in functions
    }
    calls = {
        function.name: {
            node.func.id
            for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }
        for function in functions
    }
    changed = True
    while changed:  # `slot_key` builds its partition with `slot_partition`
        changed = False
        for name, called in calls.items():
            inherited = set().union(*(found.get(callee, set()) for callee in called)) - found[name]
            if inherited:
                found[name] |= inherited
                changed = True
    return {name: prefixes for name, prefixes in found.items() if prefixes}


@dataclass(frozen=True)
class KeyedAction:
    """One IAM action a repository function needs, and the partition-key prefixes of the items it names."""

    action: str
    prefixes: frozenset[str]
    transactional: bool


def _adapter_helpers() -> dict[str, ast.AST]:
    """Module-level functions of the DynamoDB adapter (`codepool/dynamodb/`), such as the item builders."""
    return {
        node.name: node
        for path in sorted(REPOSITORY_MODULE.parent.glob("*.py"))
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


Builders = dict[str, set[str]]
TRANSACTION_GET_ACTIONS = {"Get": "dynamodb:GetItem"}


def _builder_prefixes(
    node: ast.AST, builders: Builders, helpers: dict[str, ast.AST], seen: frozenset[str] = frozenset()
) -> set[str]:
    """Prefixes of the key builders `node` refers to, itself or through the adapter's helpers (`record_item`)."""
    prefixes: set[str] = set()
    for name in _referenced_names(node):
        if name in builders:
            prefixes |= builders[name]
        elif name in helpers and name not in seen:
            prefixes |= _builder_prefixes(helpers[name], builders, helpers, seen | {name})
    return prefixes


def handler_keyed_actions(handler: str) -> list[KeyedAction]:
    """`issuer.app.lambda_handler` -> each DynamoDB action its code sends, with the prefixes of the items."""
    tree = ast.parse(REPOSITORY_MODULE.read_text(encoding="utf-8"))
    builders = key_builder_prefixes()
    helpers = _adapter_helpers()
    module_level = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    methods = {function.name: function for function in _functions(tree) if function.name not in module_level}
    reached = reached_repository_functions(handler)

    def passed_in(name: str, seen: frozenset[str]) -> set[str]:
        """Prefixes of the keys `name` may receive: built by the reached methods that call it."""
        prefixes: set[str] = set()
        for caller, function in methods.items():
            if caller in reached and caller not in seen and name in _referenced_names(function):
                prefixes |= _builder_prefixes(function, builders, helpers) | passed_in(caller, seen | {caller})
        return prefixes

    keyed: list[KeyedAction] = []
    for name, function in methods.items():
        if name not in reached:
            continue
        for node in ast.walk(function):
            method = _is_client_call(node)
            if method is None:
                continue
            if method in TRANSACTIONS:
                entries = TRANSACTION_ITEM_ACTIONS if method == "transact_write_items" else TRANSACTION_GET_ACTIONS
                for entry in ast.walk(function):
                    if not isinstance(entry, ast.Dict):
                        continue
                    for key, value in zip(entry.keys, entry.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value in entries and value:
                            prefixes = frozenset(_builder_prefixes(value, builders, helpers))
                            keyed.append(KeyedAction(entries[key.value], prefixes, transactional=True))
            else:
                prefixes = frozenset(
                    _builder_prefixes(function, builders, helpers) | passed_in(name, frozenset({name}))
                )
                keyed.append(KeyedAction(iam_action(method), prefixes, transactional=False))
    return keyed


def client_operations() -> set[str]:
    """The DynamoDB API operations the repository module sends (`TransactWriteItems`, not the actions inside)."""
    tree = ast.parse(REPOSITORY_MODULE.read_text(encoding="utf-8"))
    methods = {method for node in ast.walk(tree) if (method := _is_client_call(node)) is not None}
    return {iam_action(method).removeprefix("dynamodb:") for method in methods}
