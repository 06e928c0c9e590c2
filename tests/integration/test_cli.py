"""The `unique-codes` commands against each engine."""

from __future__ import annotations

import json

import pytest

from codepool.config import Settings
from localdev.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_table_refill_issue_lookup_stats(table: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    engine = ["--endpoint-url", str(table.endpoint_url), "--table", table.table_name]
    assert run(capsys, "create-table", *engine)[1].strip() == f"table {table.table_name} already exists"

    status, out, _ = run(capsys, "refill", "--pool", "default", "--target", "30", "--quiet", *engine)
    assert status == 0
    assert json.loads(out)["refilled"][0]["written"] == 30

    status, out, _ = run(capsys, "issue", "--count", "2", "--used-by", "cli", "--idempotency-key", "k1", *engine)
    assert status == 0
    codes = json.loads(out)["codes"]
    assert len(codes) == 2
    again = json.loads(run(capsys, "issue", "--count", "2", "--used-by", "cli", "--idempotency-key", "k1", *engine)[1])
    assert again["codes"] == codes

    status, out, _ = run(capsys, "lookup", codes[0]["code"].lower(), *engine)
    assert status == 0
    assert json.loads(out)["usedBy"] == "cli"

    status, out, _ = run(capsys, "stats", *engine)
    assert status == 0
    assert json.loads(out)["pools"][0]["available"] == 28


def test_errors_are_one_line_and_exit_2(table: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    engine = ["--endpoint-url", str(table.endpoint_url), "--table", table.table_name]
    status, _, err = run(capsys, "lookup", "NOSUCH22", *engine)
    assert status == 2
    assert "no issued code" in err
    status, _, err = run(capsys, "issue", "--pool", "nope", *engine)
    assert status == 2
    assert "unknown pool" in err
    status, _, err = run(capsys, "issue", *engine)
    assert status == 2
    assert "no codes left" in err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ["serve", "create-table", "refill", "issue", "lookup", "stats"]:
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert "usage: unique-codes" in out
        assert "--endpoint-url" in out
