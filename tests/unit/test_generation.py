"""Drawing codes in batches: the same digits as the plain spelled-out number (the sweep numbers codes with it, so
it must never change), uniform draws, no blocked code, and a clear error when the blocklist leaves none."""

from __future__ import annotations

import collections
import random

import pytest

import codepool.formats
from codepool.errors import ConfigError
from codepool.formats import ALPHABET_PRESETS, CodeFormat


def spelled_out(fmt: CodeFormat, number: int) -> str:
    """The reference: `number` in base len(alphabet), least significant digit first, one division per digit."""
    digits = []
    for _ in range(fmt.length):
        number, digit = divmod(number, len(fmt.alphabet))
        digits.append(fmt.alphabet[digit])
    return "".join(digits)


@pytest.mark.parametrize("preset", sorted(ALPHABET_PRESETS))
@pytest.mark.parametrize("length", [1, 2, 3])
def test_every_number_of_a_small_keyspace_is_spelled_as_before(preset: str, length: int) -> None:
    fmt = CodeFormat(alphabet=preset, length=length, default_blocklist=False)
    for number in range(fmt.keyspace):
        assert fmt._body(number) == spelled_out(fmt, number)


@pytest.mark.parametrize("length", [7, 8, 13])
def test_large_numbers_are_spelled_as_before(length: int) -> None:
    fmt = CodeFormat(alphabet="alphanumeric", length=length, default_blocklist=False)
    draws = random.Random(length)
    for number in [0, fmt.keyspace - 1, *(draws.randrange(fmt.keyspace) for _ in range(2_000))]:
        assert fmt._body(number) == spelled_out(fmt, number)


def test_a_check_character_is_still_appended() -> None:
    fmt = CodeFormat(alphabet="numeric", length=5, check="damm", default_blocklist=False)
    body = fmt._body(12_345)
    assert body[:-1] == spelled_out(fmt, 12_345)
    assert fmt.matches(body)


def test_batches_draw_every_code_about_equally_often() -> None:
    fmt = CodeFormat(alphabet="numeric", length=2, default_blocklist=False)  # 100 codes; 2**7 = 128: rejections
    counts = collections.Counter(code for _ in range(100) for code in fmt.generate_many(200))
    assert set(counts) == {f"{n % 10}{n // 10}" for n in range(100)}
    expected = 20_000 / 100
    chi_square = sum((seen - expected) ** 2 / expected for seen in counts.values())
    assert chi_square < 200, chi_square  # 99 degrees of freedom: a uniform draw exceeds 200 with odds below 1e-8


def test_batches_never_hold_a_blocked_code_and_have_the_size_asked_for() -> None:
    fmt = CodeFormat(alphabet="numeric", length=3, blocklist=("7",), default_blocklist=False)
    codes = fmt.generate_many(20_000)
    assert len(codes) == 20_000
    assert not any("7" in code for code in codes)
    assert len(set(codes)) == 9**3  # every unblocked code turns up (a given one is missed with odds 1e-12)


def test_a_blocklist_that_leaves_nothing_to_draw_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = CodeFormat(alphabet="numeric", length=3, default_blocklist=False)
    monkeypatch.setattr(codepool.formats.CodeFormat, "_is_blocked", lambda self, body: True)
    with pytest.raises(ConfigError, match="in a row were blocked"):
        fmt.generate_many(3)
