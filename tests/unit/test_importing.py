"""`codepool.importing` on the in-memory fake: an imported line is the code as printed, and every rejection says
which line and why."""

from __future__ import annotations

from typing import Any

from codepool.components import Components
from codepool.config import PoolConfig
from codepool.formats import CodeFormat
from codepool.importing import REPORTED_LINES, ImportSummary, import_codes
from codepool.issuing import issue_codes
from codepool.model import IssueRequest
from tests.support.fakes import InMemoryRepository

CARDS = PoolConfig(
    name="cards", format=CodeFormat(alphabet="unambiguous", length=4), target=10, low_watermark=0, imported_only=True
)
PINS = PoolConfig(
    name="pins",
    format=CodeFormat(alphabet="numeric", length=4, check="damm", prefix="PIN-", pattern="##-###"),
    target=10,
    low_watermark=0,
    imported_only=True,
)
WORDS = PoolConfig(
    name="words",
    format=CodeFormat(alphabet="alphanumeric", length=6, blocklist=("FOO",), default_blocklist=False),
    target=10,
    low_watermark=0,
    imported_only=True,
)


async def run_import(repository: InMemoryRepository, pool: PoolConfig, lines: list[str]) -> ImportSummary:
    return await import_codes(repository, pool, enumerate(lines, start=1))


def stored_codes(repository: InMemoryRepository, pool: PoolConfig) -> set[str]:
    return {pool.format.display_of(key) for key in repository.available_keys(pool.name)}


def reasons(rejected: list[Any]) -> dict[int, str]:
    return {entry["line"]: entry["reason"] for entry in rejected}


async def test_an_imported_line_is_the_code_as_printed_never_a_confusable_reading_of_it() -> None:
    """`ABC1` in a pool without `1`: a look-up reads it as `ABCL`, an import must not store that."""
    repository = InMemoryRepository()
    summary = await run_import(repository, CARDS, ["ABC1", "ABCL", "abcd", "AB-CE", "0BCD"])
    assert stored_codes(repository, CARDS) == {"ABCL", "ABCD", "ABCE"}
    assert (summary.imported, summary.invalid, summary.duplicates) == (3, 2, 0)
    report = summary.to_json()
    assert reasons(report["invalidLines"]) == {
        1: "character '1' at position 4 is not in the pool's alphabet '23456789ABCDEFGHJKLMNPQRSTUVWXYZ' "
        "(a look-up would read it as 'L'; an import stores only what is printed)",
        5: "character '0' at position 1 is not in the pool's alphabet '23456789ABCDEFGHJKLMNPQRSTUVWXYZ'",
    }
    # Case and separators are normalised, and the summary counts the lines stored differently from their text.
    assert summary.normalised == 2
    assert report["normalised"] == 2


async def test_characters_that_only_upper_case_into_the_alphabet_are_not_it() -> None:
    """Dotless i (U+0131) upper-cases to `I`, long s (U+017F) to `S`: a look-up folds the whole text into the
    alphabet, an import refuses them."""
    repository = InMemoryRepository()
    pool = PoolConfig(name="plain", format=CodeFormat(alphabet="alphanumeric", length=4), target=10, low_watermark=0)
    summary = await run_import(repository, pool, ["ABC\u0131", "\u017fABC", "abcs"])
    assert reasons(summary.to_json()["invalidLines"]) == {
        1: "character '\u0131' at position 4 is not in the pool's alphabet '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'",
        2: "character '\u017f' at position 1 is not in the pool's alphabet '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'",
    }
    assert stored_codes(repository, pool) == {"ABCS"}


async def test_each_rejection_names_its_line_and_its_own_reason() -> None:
    repository = InMemoryRepository()
    lines = [
        "PIN-17-330",  # 1: valid
        "PIN-17-33",  # 2: too short
        "PIN-1X-330",  # 3: a letter in a numeric pool
        "PIN-17-331",  # 4: a typo the check character catches
        "PAN-17-330",  # 5: not the pool's prefix
        "pin 17 330",  # 6: the code of line 1, typed differently
    ]
    summary = await run_import(repository, PINS, lines)
    report = summary.to_json()
    assert reasons(report["invalidLines"]) == {
        2: "wrong length: 7 characters where the pool's codes have 8 (separators not counted; they look like "
        "'PIN-##-###')",
        3: "character 'X' at position 6 is not in the pool's alphabet '0123456789'",
        4: "wrong check character '1' at position 10: the characters before it give '0' (a typo?)",
        5: "character 'A' at position 2 does not match the pool's prefix 'PIN-'",
    }
    assert reasons(report["duplicateLines"]) == {6: "same code as line 1"}
    assert stored_codes(repository, PINS) == {"PIN-17-330"}


async def test_a_blocked_line_names_the_word_it_spells() -> None:
    repository = InMemoryRepository()
    summary = await run_import(repository, WORDS, ["XFOOXY", "XF00XY", "XFAAXY"])
    assert reasons(summary.to_json()["invalidLines"]) == {
        1: "spells the blocked word 'FOO'",
        2: "spells the blocked word 'FOO' as 'F00'",
    }
    assert stored_codes(repository, WORDS) == {"XFAAXY"}


async def test_codes_already_in_the_pool_or_issued_are_listed_with_their_lines() -> None:
    repository = InMemoryRepository()
    await run_import(repository, CARDS, ["ABCD", "ABCE", "ABCF"])
    issued = await issue_codes(Components.over(repository, {CARDS.name: CARDS}), IssueRequest(pool=CARDS.name))
    code = issued.codes[0].code
    left = sorted({"ABCD", "ABCE", "ABCF"} - {code})
    summary = await run_import(repository, CARDS, ["# again", code, *left])
    report = summary.to_json()
    assert (summary.imported, summary.already_issued, summary.already_available) == (0, 1, 2)
    assert reasons(report["alreadyIssuedLines"]) == {2: "already issued: not imported again"}
    assert reasons(report["alreadyAvailableLines"]) == {
        3: "already in pool 'cards': not written again",
        4: "already in pool 'cards': not written again",
    }


async def test_only_the_first_lines_of_each_rejection_are_kept_but_all_are_counted() -> None:
    repository = InMemoryRepository()
    lines = ["ABC1"] * (REPORTED_LINES + 5)
    summary = await run_import(repository, CARDS, lines)
    assert summary.invalid == REPORTED_LINES + 5
    assert [entry["line"] for entry in summary.to_json()["invalidLines"]] == list(range(1, REPORTED_LINES + 1))
