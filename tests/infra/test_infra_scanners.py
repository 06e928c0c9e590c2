"""cfn-lint and checkov pass on infra/template.yaml; every checkov skip carries a reason and is still needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from code_actions import REPO_ROOT

# checkov pins an older botocore than aioboto3 allows, so `make infra-tools` installs it in its own venv.
CHECKOV = REPO_ROOT / ".venv-infra" / "bin" / "checkov"
MIN_REASON_LENGTH = 60


def test_cfn_lint_reports_nothing(template_path: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", str(template_path)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.fixture(scope="module")
def checkov_report(template_path: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO_ROOT)} is missing: run `make infra-tools`")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(template_path),
            "--framework",
            "cloudformation",
            "--skip-download",  # offline: no guidelines from the Prisma Cloud API
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    report["returncode"] = result.returncode
    return report


def test_checkov_has_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    failed = [(c["check_id"], c["resource"]) for c in checkov_report["results"]["failed_checks"]]
    assert failed == []
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["passed"] > 0
    assert checkov_report["returncode"] == 0


def test_every_checkov_skip_is_justified(checkov_report: dict[str, Any]) -> None:
    for check in checkov_report["results"]["skipped_checks"]:
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) >= MIN_REASON_LENGTH, f"{check['check_id']} on {check['resource']}: reason {reason!r}"


def test_every_checkov_skip_in_the_template_is_still_needed(
    checkov_report: dict[str, Any], template: dict[str, Any]
) -> None:
    declared = {
        (skip["id"], name)
        for name, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    used = {(c["check_id"], c["resource"].rsplit(".", 1)[1]) for c in checkov_report["results"]["skipped_checks"]}
    assert declared == used, f"skips for checks that no longer fire: {sorted(declared - used)}"
