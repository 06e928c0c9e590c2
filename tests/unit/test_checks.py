"""Each check scheme's claim, proven over every body of a small length: every single substitution (at every
position, the check character's included) and every adjacent transposition of the whole code."""

from __future__ import annotations

import itertools

import pytest

from codepool.checks import CROCKFORD_CHECK_SYMBOLS, SCHEMES, CheckScheme
from codepool.formats import ALPHABET_PRESETS


def _valid(scheme: CheckScheme, alphabet: str, code: str) -> bool:
    body, check = code[:-1], code[-1]
    return all(char in alphabet for char in body) and scheme.character(body, alphabet) == check


def _undetected(scheme_name: str, alphabet: str, length: int) -> tuple[int, int, set[tuple[int, int]]]:
    """(codes checked, undetected substitutions, value pairs of undetected adjacent transpositions)."""
    scheme = SCHEMES[scheme_name]
    symbols = scheme.symbols(alphabet)
    codes = substitutions = 0
    transpositions: set[tuple[int, int]] = set()
    for letters in itertools.product(alphabet, repeat=length):
        body = "".join(letters)
        code = body + scheme.character(body, alphabet)
        codes += 1
        for position, original in enumerate(code):
            for char in symbols if position == len(code) - 1 else alphabet:
                if char != original and _valid(scheme, alphabet, code[:position] + char + code[position + 1 :]):
                    substitutions += 1
        for position in range(len(code) - 1):
            first, second = code[position], code[position + 1]
            swapped = code[:position] + second + first + code[position + 2 :]
            if first != second and _valid(scheme, alphabet, swapped):
                transpositions.add((symbols.index(first), symbols.index(second)))
    return codes, substitutions, transpositions


@pytest.mark.parametrize(
    ("preset", "length"), [("numeric", 3), ("hex", 3), ("unambiguous", 2), ("alphanumeric", 2), ("base62", 2)]
)
def test_luhn_catches_every_substitution_and_every_transposition_but_first_and_last(preset: str, length: int) -> None:
    alphabet = ALPHABET_PRESETS[preset]
    codes, substitutions, transpositions = _undetected("luhn", alphabet, length)
    assert codes == len(alphabet) ** length
    assert substitutions == 0
    last = len(alphabet) - 1
    assert transpositions == {(0, last), (last, 0)}


def test_damm_catches_every_substitution_and_every_transposition() -> None:
    codes, substitutions, transpositions = _undetected("damm", ALPHABET_PRESETS["numeric"], 4)
    assert codes == 10_000
    assert (substitutions, transpositions) == (0, set())


def test_crockford_check_symbol_catches_every_substitution_and_every_transposition() -> None:
    codes, substitutions, transpositions = _undetected("crockford", ALPHABET_PRESETS["crockford"], 2)
    assert codes == 32**2
    assert (substitutions, transpositions) == (0, set())


def test_known_values() -> None:
    assert SCHEMES["luhn"].character("7992739871", "0123456789") == "3"
    assert SCHEMES["damm"].character("572", "0123456789") == "4"
    # 1234 in Crockford base 32 is 1*32^3 + 2*32^2 + 3*32 + 4 = 34916; 34916 mod 37 = 25 -> 'S'.
    assert SCHEMES["crockford"].character("1234", ALPHABET_PRESETS["crockford"]) == CROCKFORD_CHECK_SYMBOLS[25]


def test_the_crockford_check_uses_the_five_extra_symbols() -> None:
    alphabet = ALPHABET_PRESETS["crockford"]
    seen = {SCHEMES["crockford"].character(a + b, alphabet) for a in alphabet for b in alphabet}
    assert seen == set(CROCKFORD_CHECK_SYMBOLS)


@pytest.mark.parametrize(
    ("scheme", "alphabet", "refused"),
    [
        ("luhn", "ABCDEFGHIJKLMNOPQRSTUVW", True),  # 23 characters: doubling is no permutation
        ("luhn", "0123456789", False),
        ("damm", "0123456789", False),
        ("damm", "0123456789AB", True),
        ("crockford", ALPHABET_PRESETS["crockford"], False),
        ("crockford", ALPHABET_PRESETS["unambiguous"], True),
    ],
)
def test_a_scheme_refuses_alphabets_it_cannot_protect(scheme: str, alphabet: str, refused: bool) -> None:
    assert (SCHEMES[scheme].refusal(alphabet) is not None) is refused


def test_luhn_on_an_odd_alphabet_really_misses_typos() -> None:
    odd = "ABCDEFGHIJKLMNOPQRSTUVW"
    _, substitutions, _ = _undetected("luhn", odd, 2)
    assert substitutions > 0
