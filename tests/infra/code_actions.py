"""Which DynamoDB IAM actions each Lambda handler can reach, read from the source code (not a hand-made list).

1. In `codepool/dynamodb/repository.py`, every `self._client.<method>(...)` call is an API operation; its IAM
   action is the operation's name (`batch_get_item` -> `dynamodb:BatchGetItem`), except for transactions,
   which IAM authorises per item: the `Put`/`Delete`/`Update`/`ConditionCheck` entries the method builds.
2. From each handler module, every function whose name is called or referenced is followed, across the handler's module
   and the core package. Matching by name over-approximates (any `claim` reaches every `claim`), which
   errs towards demanding a grant, never towards missing one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
REPOSITORY_MODULE = REPO_ROOT / "codepool" / "dynamodb" / "repository.py"
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


def _is_client_call(node: ast.AST) -> str | None:
    """`self._client.<method>(...)` -> method."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    owner = node.func.value
    if isinstance(owner, ast.Attribute) and owner.attr == "_client" and isinstance(owner.value, ast.Name):
        return node.func.attr if owner.value.id == "self" else None
    return None


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


def _definitions() -> dict[str, list[Definition]]:
    """Function name -> its definitions, over the packages that ship in the Lambda artifact."""
    definitions: dict[str, list[Definition]] = {}
    for package in ("codepool", "issuer", "refiller"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            for function in _functions(ast.parse(path.read_text(encoding="utf-8"))):
                definitions.setdefault(function.name, []).append((path, function))
    return definitions


def handler_actions(handler: str) -> set[str]:
    """`issuer.app.lambda_handler` -> the DynamoDB IAM actions reachable from the handler's module."""
    module_path = REPO_ROOT / Path(*handler.split(".")[:-1]).with_suffix(".py")
    definitions = _definitions()
    per_method = direct_actions_by_method()
    # Every function of the handler module is an entry point: routes are registered by decorators.
    pending: list[Definition] = [
        (module_path, function) for function in _functions(ast.parse(module_path.read_text(encoding="utf-8")))
    ]
    seen: set[tuple[Path, int]] = set()
    actions: set[str] = set()
    while pending:
        path, function = pending.pop()
        if (path, function.lineno) in seen:
            continue
        seen.add((path, function.lineno))
        if path == REPOSITORY_MODULE:
            actions |= per_method.get(function.name, set())
        for name in _referenced_names(function):
            pending.extend(definitions.get(name, []))
    return actions


def index_names_in_code() -> set[str]:
    """Index names the repository queries (`IndexName="..."`)."""
    return set(re.findall(r"IndexName\s*[=:]\s*[\"']([^\"']+)", REPOSITORY_MODULE.read_text(encoding="utf-8")))
