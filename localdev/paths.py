"""Where the repository's own files are, for tools that run from a checkout (not from the Lambda artifact)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOOLS_DIR = PROJECT_ROOT / "tools"
"""npm packages pinned for local runs (DynamoDB Local)."""
TEMPLATE_PATH = PROJECT_ROOT / "infra" / "template.yaml"
"""The SAM template: the one source of the table's schema."""
