"""Fixtures of the infrastructure tests: the SAM template as plain data (a fresh copy per test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localdev.paths import TEMPLATE_PATH
from localdev.schema import load_template


@pytest.fixture(scope="session")
def template_path() -> Path:
    return TEMPLATE_PATH


@pytest.fixture
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def resources(template: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"]
    return found
