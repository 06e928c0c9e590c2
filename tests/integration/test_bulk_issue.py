"""`unique-codes issue --count N --out FILE` on DynamoDB Local: every code once, in the file and in the table,
whether the run completes, is killed, interrupted, torn mid-row or stopped by an empty pool."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from codepool.config import Settings
from codepool.dynamodb.client import open_client
from codepool.runtime import Container
from localdev.bulk import HEADER, state_path
from localdev.cli import main
from localdev.schema import create_table
from tests.support.tables import drop_table, issued_records

pytestmark = pytest.mark.integration

POOL = "print"
POOLS = f"""
[pools.{POOL}]
alphabet = "unambiguous"
length = 10
target = 300
shards = 2
"""


@pytest.fixture
def cli_flags(local_table: Settings, tmp_path: Path) -> list[str]:
    """The CLI's flags for a fresh table on DynamoDB Local with the small `print` pool (target 300)."""
    pools = tmp_path / "pools.toml"
    pools.write_text(POOLS)
    return [
        "--endpoint-url",
        str(local_table.endpoint_url),
        "--table",
        local_table.table_name,
        "--pools-file",
        str(pools),
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def bulk(
    capsys: pytest.CaptureFixture[str], cli_flags: list[str], out: Path, count: int, *extra: str
) -> dict[str, object]:
    """A bulk run that must succeed; its JSON summary."""
    status, stdout, stderr = run(
        capsys, "issue", "--pool", POOL, "--count", str(count), "--out", str(out), *extra, *cli_flags
    )
    assert status == 0, stderr
    summary: dict[str, object] = json.loads(stdout)
    return summary


def refill(capsys: pytest.CaptureFixture[str], cli_flags: list[str], target: int) -> None:
    assert run(capsys, "refill", "--pool", POOL, "--target", str(target), "--quiet", *cli_flags)[0] == 0


def file_rows(out: Path) -> list[list[str]]:
    with out.open(newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == HEADER.decode().strip().split(",")
    return rows[1:]


def file_codes(out: Path) -> list[str]:
    return [row[0] for row in file_rows(out)]


def issued_in_pool(settings: Settings) -> dict[str, str]:
    """Every code the table holds as issued from POOL, with its issuedAt."""

    async def scan() -> dict[str, str]:
        async with Container.open(settings, pools={}) as container:
            records = await issued_records(container.client, settings.table_name)
        return {item["code"]["S"]: item["issuedAt"]["S"] for item in records.values() if item["pool"]["S"] == POOL}

    return asyncio.run(scan())


def assert_exactly_once(out: Path, settings: Settings, count: int) -> None:
    """The file holds `count` distinct codes, and they are exactly the codes the table issued from the pool."""
    rows = file_rows(out)
    codes = [row[0] for row in rows]
    assert len(codes) == count
    assert len(set(codes)) == count
    assert {row[1] for row in rows} == {POOL}
    assert issued_in_pool(settings) == {row[0]: row[2] for row in rows}


def test_bulk_issue_refills_the_pool_mid_run(
    local_table: Settings, cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refill(capsys, cli_flags, 300)
    out = tmp_path / "codes.csv"
    summary = bulk(capsys, cli_flags, out, 1000)
    assert summary["written"] == 1000
    assert summary["alreadyWritten"] == 0
    assert summary["resumed"] is False
    assert isinstance(summary["refills"], int)
    assert summary["refills"] >= 1
    assert_exactly_once(out, local_table, 1000)
    state = json.loads(state_path(out).read_text())
    assert state["done"] is True
    assert state["count"] == 1000


def start_bulk(cli_flags: list[str], out: Path, count: int) -> subprocess.Popen[str]:
    """The CLI in a subprocess, configured through the environment as a user's shell would."""
    endpoint, table, pools = cli_flags[1], cli_flags[3], cli_flags[5]
    environment = {**os.environ, "AWS_ENDPOINT_URL_DYNAMODB": endpoint, "TABLE_NAME": table, "POOLS_FILE": pools}
    command = [sys.executable, "-m", "localdev", "issue", "--pool", POOL, "--count", str(count), "--out", str(out)]
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(out: Path, process: subprocess.Popen[str], rows: int, timeout: float = 30.0) -> int:
    """Poll the file until it holds at least `rows` rows (counted by newlines); the number seen."""
    limit = time.monotonic() + timeout
    while time.monotonic() < limit:
        seen = out.read_bytes().count(b"\n") - 1 if out.exists() else 0
        if seen >= rows:
            return seen
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError(f"{out} did not reach {rows} rows in {timeout} s")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_resume_after_the_process_is_stopped(
    stop: signal.Signals,
    local_table: Settings,
    cli_flags: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    count = 2000
    refill(capsys, cli_flags, 300)
    out = tmp_path / "codes.csv"
    process = start_bulk(cli_flags, out, count)
    try:
        seen = wait_for_rows(out, process, 100)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert seen < count
    if stop == signal.SIGINT:
        assert process.returncode == 130, stderr
        assert "interrupted" in stderr
        assert "run the same command again to resume" in stderr
    else:
        assert process.returncode == -signal.SIGKILL
    kept = (out.read_bytes().count(b"\n") - 1) // 25 * 25  # whole chunks; a torn row has no newline yet

    summary = bulk(capsys, cli_flags, out, count)
    assert summary["resumed"] is True
    assert summary["alreadyWritten"] == kept
    assert summary["written"] == count - kept
    assert_exactly_once(out, local_table, count)


def test_a_torn_trailing_chunk_is_claimed_again_with_its_key(
    local_table: Settings, cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refill(capsys, cli_flags, 300)
    out = tmp_path / "codes.csv"
    bulk(capsys, cli_flags, out, 200)
    original = out.read_bytes()
    lines = original.splitlines(keepends=True)
    # The header, 5 whole chunks, 4 rows of the sixth and half of its fifth row: a crash mid-write.
    torn = b"".join(lines[: 1 + 125 + 4]) + lines[130][:7]
    out.write_bytes(torn)

    summary = bulk(capsys, cli_flags, out, 200)
    assert summary["alreadyWritten"] == 125
    assert summary["written"] == 75
    assert summary["replayed"] == 75  # the same codes again, none newly issued
    assert out.read_bytes() == original
    assert_exactly_once(out, local_table, 200)


def test_a_finished_run_issues_nothing_and_another_run_is_refused(
    local_table: Settings, cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refill(capsys, cli_flags, 300)
    out = tmp_path / "codes.csv"
    bulk(capsys, cli_flags, out, 60, "--used-by", "print-run-7")
    original = out.read_bytes()

    again = ["--count", "60", "--out", str(out), "--used-by", "print-run-7"]
    status, stdout, stderr = run(capsys, "issue", "--pool", POOL, *again, *cli_flags)
    assert status == 0
    assert "nothing issued" in stderr
    assert json.loads(stdout)["written"] == 0
    assert json.loads(stdout)["alreadyWritten"] == 60

    for changed in (["--count", "61", "--used-by", "print-run-7"], ["--count", "60", "--used-by", "other"]):
        status, stdout, stderr = run(capsys, "issue", "--pool", POOL, "--out", str(out), *changed, *cli_flags)
        assert status == 2
        assert stdout == ""
        assert "belongs to another bulk run" in stderr
        assert "pick another --out file" in stderr
    assert out.read_bytes() == original
    assert_exactly_once(out, local_table, 60)


def test_an_empty_pool_with_no_refill_stops_resumably(
    local_table: Settings, cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refill(capsys, cli_flags, 30)
    out = tmp_path / "codes.csv"
    no_refill = ["--count", "100", "--out", str(out), "--no-refill", "--quiet"]
    status, stdout, stderr = run(capsys, "issue", "--pool", POOL, *no_refill, *cli_flags)
    assert status == 1
    assert stdout == ""
    assert "codes left" in stderr  # none, or about 5, fewer than a chunk's 25: all or none
    assert "run the same command again to resume" in stderr
    assert len(file_codes(out)) in (0, 25)

    summary = bulk(capsys, cli_flags, out, 100)
    assert summary["resumed"] is True
    assert_exactly_once(out, local_table, 100)


def test_a_run_too_old_for_its_keys_is_not_resumed(
    local_table: Settings, cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refill(capsys, cli_flags, 300)
    out = tmp_path / "codes.csv"
    bulk(capsys, cli_flags, out, 50)
    out.write_bytes(b"".join(out.read_bytes().splitlines(keepends=True)[:26]))
    state = json.loads(state_path(out).read_text())
    state["createdAt"] = "2000-01-01T00:00:00.000Z"
    state_path(out).write_text(json.dumps(state))

    status, _, stderr = run(capsys, "issue", "--pool", POOL, "--count", "50", "--out", str(out), *cli_flags)
    assert status == 2
    assert "no longer resumed" in stderr
    assert "idempotency keys last 24 h" in stderr
    assert len(issued_in_pool(local_table)) == 50  # nothing new was claimed


def test_invalid_bulk_input_is_a_clear_error(
    cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "codes.csv")
    foreign = tmp_path / "mine.csv"
    foreign.write_text("not codes\n")
    cases = [
        (["--count", "0", "--out", out], "--count must be between 1 and 10,000,000"),
        (["--count", "10000001", "--out", out], "--count must be between 1 and 10,000,000"),
        (["--count", "100", "--out", out, "--concurrency", "65"], "--concurrency must be between 1 and 64"),
        (["--count", "100", "--out", str(tmp_path / "nowhere" / "codes.csv")], "does not exist"),
        (["--count", "100", "--out", str(foreign)], "no bulk run state"),
        (["--count", "100", "--out", out, "--idempotency-key", "k"], "--idempotency-key does not go with --out"),
        (["--count", "26"], "count must be between 1 and 25, got 26"),
        (["--count", "5", "--concurrency", "4"], "--concurrency only goes with --out"),
    ]
    for argv, message in cases:
        status, stdout, stderr = run(capsys, "issue", "--pool", POOL, *argv, *cli_flags)
        assert status == 2, argv
        assert stdout == ""
        assert message in stderr, (argv, stderr)
    assert not (tmp_path / "codes.csv").exists()
    assert foreign.read_text() == "not codes\n"


def recreate_table(settings: Settings) -> None:
    """What a restarted in-memory engine looks like: a table of the same name, empty."""
    drop_table(settings)

    async def create() -> None:
        async with AsyncExitStack() as stack:
            await create_table(await open_client(settings, stack), settings.table_name)

    asyncio.run(create())


@pytest.mark.parametrize("finished", [True, False], ids=["finished", "interrupted"])
def test_a_run_is_not_trusted_against_a_table_without_its_codes(
    finished: bool, local_table: Settings, cli_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve`'s engine is in memory: after a restart the table has the same name and none of the run's codes.
    The state file alone would say the run is done ("nothing issued") or resume it where the file stops."""
    refill(capsys, cli_flags, 300)
    out = tmp_path / "print2.csv"
    bulk(capsys, cli_flags, out, 200)
    if not finished:
        lines = out.read_bytes().splitlines(keepends=True)
        out.write_bytes(b"".join(lines[: 1 + 125 + 4]) + lines[130][:7])  # 5 whole chunks and a torn one
        state = json.loads(state_path(out).read_text())
        state["done"] = False
        state_path(out).write_text(json.dumps(state))
    held, state_before = out.read_bytes(), state_path(out).read_bytes()

    recreate_table(local_table)
    refill(capsys, cli_flags, 300)
    status, stdout, stderr = run(capsys, "issue", "--pool", POOL, "--count", "200", "--out", str(out), *cli_flags)
    assert status == 2, stderr
    assert stdout == ""
    assert "nothing issued" not in stderr
    assert "has no record of" in stderr
    assert "not the table the run issued them from" in stderr
    assert f"move {out} and {state_path(out).name} away" in stderr
    # Nothing lost, nothing issued: the file (torn tail included) and its state are as they were.
    assert out.read_bytes() == held
    assert state_path(out).read_bytes() == state_before
    assert issued_in_pool(local_table) == {}
