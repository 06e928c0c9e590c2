"""The `unique-codes` commands against each engine."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_lookup_without_a_pools_file_still_finds_a_code_of_any_pool(
    table: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POOLS_FILE", raising=False)
    pools = tmp_path / "pools.toml"
    # 7 digits and a check: 9 characters without separators, so the built-in pool's 8-character codes cannot
    # accept the typo below (text some pool accepts is looked up there: a 404, not a 400).
    pools.write_text('[pools.tickets]\nalphabet = "numeric"\nlength = 7\nprefix = "T-"\ncheck = "damm"\ntarget = 20\n')
    engine = ["--endpoint-url", str(table.endpoint_url), "--table", table.table_name]
    with_pools = [*engine, "--pools-file", str(pools)]
    assert run(capsys, "refill", "--pool", "tickets", "--quiet", *with_pools)[0] == 0
    code = json.loads(run(capsys, "issue", "--pool", "tickets", *with_pools)[1])["code"]

    status, out, _ = run(capsys, "lookup", code.lower(), *with_pools)  # resolved against the pools' formats
    assert (status, json.loads(out)["pool"]) == (0, "tickets")
    status, out, _ = run(capsys, "lookup", code, *engine)  # pools unknown: found as typed, as before
    assert (status, json.loads(out)["code"]) == (0, code)
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)
    status, _, err = run(capsys, "lookup", typo, *with_pools)
    assert status == 2
    assert "wrong check character" in err


def test_new_commands_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["import", "--help"])
    assert exited.value.code == 0
    assert "imported_only" in capsys.readouterr().out
