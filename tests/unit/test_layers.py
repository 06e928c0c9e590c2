"""The house's import rules (README "Layout"), read from the source with `ast`: the core imports no edge, the
handlers import only the core, and the pure core imports neither the SDK nor Powertools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"codepool", "issuer", "refiller", "localdev", "benchmarks", "tests"}
ALLOWED = {
    "codepool": {"codepool"},
    "issuer": {"codepool", "issuer"},
    "refiller": {"codepool", "refiller"},
    "localdev": {"codepool", "issuer", "refiller", "localdev"},
    "benchmarks": {"codepool", "issuer", "refiller", "localdev", "benchmarks"},
}
ADAPTER = {"codepool/dynamodb", "codepool/runtime.py"}
"""Where the core may meet the SDK: the DynamoDB adapter, and the composition root that opens its client."""
SDK = {"aioboto3", "aiobotocore", "botocore", "boto3", "aws_lambda_powertools"}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    offending = {
        str(path.relative_to(ROOT)): sorted((imported_roots(path) & OURS) - ALLOWED[package])
        for path in sources(package)
    }
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_pure_core_needs_no_sdk() -> None:
    pure = [path for path in sources("codepool") if not any(str(path.relative_to(ROOT)).startswith(a) for a in ADAPTER)]
    assert len(pure) >= 10
    offending = {str(path.relative_to(ROOT)): sorted(imported_roots(path) & SDK) for path in pure}
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_rules_see_real_imports() -> None:
    """A check that cannot fail proves nothing: the parser finds the imports the layers are made of."""
    assert "codepool" in imported_roots(ROOT / "issuer" / "app.py")
    assert {"issuer", "refiller"} <= imported_roots(ROOT / "localdev" / "server.py") | imported_roots(
        ROOT / "localdev" / "cli.py"
    )
    assert "aioboto3" in imported_roots(ROOT / "codepool" / "dynamodb" / "client.py")
