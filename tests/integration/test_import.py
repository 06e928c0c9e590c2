"""`unique-codes import POOL FILE` on DynamoDB Local: validation, duplicates, a harmless re-run, imported-only pools."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from codepool.config import PoolConfig, Settings, load_pools
from codepool.errors import PoolExhaustedError
from codepool.formats import CodeFormat
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from codepool.queries import pool_stats
from codepool.refilling import refill_pool
from codepool.runtime import Container
from localdev.cli import main

pytestmark = pytest.mark.integration

POOLS = """
[pools.cards]
alphabet = "numeric"
length = 7
check = "damm"
pattern = "####-####"
imported_only = true
target = 100

[pools.mixed]
alphabet = "crockford"
length = 6
target = 20
"""


@pytest.fixture
def pools_file(tmp_path: Path) -> Path:
    path = tmp_path / "pools.toml"
    path.write_text(POOLS)
    return path


def run_import(
    settings: Settings, pools_file: Path, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    status = main(
        [
            "import",
            *args,
            "--endpoint-url",
            str(settings.endpoint_url),
            "--table",
            settings.table_name,
            "--pools-file",
            str(pools_file),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    return status, json.loads(out) if out.strip() else {}


def card_codes(count: int) -> list[str]:
    """Codes as printed on cards: the pool's format, spread over its keyspace."""
    cards = CodeFormat(alphabet="numeric", length=7, check="damm", pattern="####-####")
    codes: list[str] = []
    number = 1_234_567
    while len(codes) < count:
        code = cards.code_for(number)
        if code is not None:
            codes.append(code)
        number += 7919
    return codes


def test_import_validates_reports_and_a_rerun_is_harmless(
    local_table: Settings, pools_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    codes = card_codes(60)
    wrong_check = codes[0][:-1] + str((int(codes[0][-1]) + 1) % 10)
    lines = [
        "# printed run 2026-11",
        *codes[:30],
        "",
        codes[5].replace("-", " ").lower(),  # line 33: a duplicate of line 7, typed differently
        wrong_check,  # line 34
        "ABCD-EFGH",  # line 35: not a code of the pool
        *codes[30:],
    ]
    listing = tmp_path / "cards.txt"
    listing.write_text("\n".join(lines) + "\n")

    status, summary = run_import(local_table, pools_file, "cards", str(listing), capsys=capsys)
    assert status == 1  # some lines were invalid; the valid ones are imported all the same
    assert (summary["imported"], summary["duplicates"], summary["invalid"]) == (60, 1, 2)
    assert summary["duplicateLines"] == [{"line": 33, "text": lines[32], "reason": "same code as line 7"}]
    check = codes[0][-1]
    assert [(r["line"], r["reason"]) for r in summary["invalidLines"]] == [
        (
            34,
            f"wrong check character {wrong_check[-1]!r} at position 9: "
            f"the characters before it give {check!r} (a typo?)",
        ),
        (35, "character 'A' at position 1 is not in the pool's alphabet '0123456789'"),
    ]
    assert summary["normalised"] == 0  # every line imported is printed as the pool displays it

    again_status, again = run_import(local_table, pools_file, "cards", str(listing), capsys=capsys)
    assert again_status == 1
    assert (again["imported"], again["alreadyAvailable"], again["alreadyIssued"]) == (0, 60, 0)
    assert [r["line"] for r in again["alreadyAvailableLines"]] == [*range(2, 32), *range(36, 66)]
    assert again["alreadyAvailableLines"][0] == {
        "line": 2,
        "text": codes[0],
        "reason": "already in pool 'cards': not written again",
    }

    asyncio.run(issue_every_imported_code(local_table, load_pools(pools_file), codes))

    # After they were issued, a third run finds every code issued and imports nothing.
    _, third = run_import(local_table, pools_file, "cards", str(listing), capsys=capsys)
    assert (third["imported"], third["alreadyIssued"]) == (0, 60)
    assert len(third["alreadyIssuedLines"]) == 60
    assert third["alreadyIssuedLines"][-1] == {
        "line": 65,
        "text": codes[-1],
        "reason": "already issued: not imported again",
    }


async def issue_every_imported_code(settings: Settings, pools: dict[str, PoolConfig], codes: list[str]) -> None:
    async with Container.open(settings, pools) as container:
        cards = pools["cards"]
        # Imported-only: the refiller never generates codes for it.
        refill = await refill_pool(container.repository, cards)
        assert refill.written == 0
        issued = []
        for _ in range(60):
            issued += [c.code for c in (await issue_codes(container.components, IssueRequest(pool="cards"))).codes]
        assert sorted(issued) == sorted(codes)
        with pytest.raises(PoolExhaustedError, match="imported-only"):
            await issue_codes(container.components, IssueRequest(pool="cards"))
        stats = await pool_stats(container.repository, cards)
        assert (stats.issued, stats.usable_keyspace, stats.exhausted) == (60, 60, True)


def test_import_reads_a_csv_column_and_checks_against_codes_issued_in_other_ways(
    local_table: Settings, pools_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "codes.csv"
    table.write_text('serial,voucher\n1,"ABC-123"\n2,abc123\n3,0OIL1Z\n4,\n5,"TOOLONG1"\n', encoding="utf-8")
    status, summary = run_import(local_table, pools_file, "mixed", str(table), "--column", "voucher", capsys=capsys)
    assert status == 1
    assert (summary["lines"], summary["imported"], summary["duplicates"], summary["invalid"]) == (4, 1, 1, 2)
    assert summary["normalised"] == 1  # "ABC-123" is stored as the pool prints it, "ABC123"
    assert summary["duplicateLines"][0]["line"] == 3
    crockford = "'0123456789ABCDEFGHJKMNPQRSTVWXYZ'"
    assert [(r["line"], r["reason"]) for r in summary["invalidLines"]] == [
        # A look-up reads O, I and L as 0 and 1; a printed code holding them is not one of the pool's.
        (
            4,
            f"character 'O' at position 2 is not in the pool's alphabet {crockford} "
            "(a look-up would read it as '0'; an import stores only what is printed)",
        ),
        (
            6,
            "wrong length: 8 characters where the pool's codes have 6 (separators not counted; they look like "
            "'######')",
        ),
    ]
    status, _ = run_import(local_table, pools_file, "mixed", str(table), "--column", "nope", capsys=capsys)
    assert status == 2  # a clear error, nothing imported


def test_import_refuses_what_is_not_a_utf8_text_file(
    local_table: Settings, pools_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "codes.txt"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    status = main(
        [
            *("import", "cards", str(binary), "--endpoint-url", str(local_table.endpoint_url)),
            *("--table", local_table.table_name, "--pools-file", str(pools_file), "--quiet"),
        ]
    )
    assert status == 2
    assert "not UTF-8" in capsys.readouterr().err
