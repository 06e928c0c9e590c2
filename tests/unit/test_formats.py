from __future__ import annotations

import re

import pytest

from codepool.checks import luhn_character as luhn_check_character
from codepool.errors import ConfigError
from codepool.formats import ALPHABET_PRESETS, CheckCharacterError, CodeFormat, compact


def test_default_style_code_uses_only_unambiguous_characters() -> None:
    fmt = CodeFormat(alphabet="unambiguous", length=8)
    codes = {fmt.generate() for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", code)
        assert fmt.matches(code)


def test_every_alphabet_character_appears_so_generation_is_not_biased_to_a_subset() -> None:
    fmt = CodeFormat(alphabet="hex", length=4)
    seen = set("".join(fmt.generate() for _ in range(500)))
    assert seen == set(ALPHABET_PRESETS["hex"])


def test_prefix_pattern_and_postfix_lay_out_the_code() -> None:
    fmt = CodeFormat(alphabet="numeric", length=8, prefix="PROMO-", pattern="####-####", postfix="-X")
    code = fmt.generate()
    assert re.fullmatch(r"PROMO-\d{4}-\d{4}-X", code)
    assert fmt.matches(code)
    assert not fmt.matches(code.replace("PROMO", "PROMX"))
    assert fmt.canonical(code) == compact(code).upper()


def test_luhn_check_character_catches_single_typos() -> None:
    fmt = CodeFormat(alphabet="unambiguous", length=6, check="luhn", pattern="###-####")
    code = fmt.generate()
    assert fmt.matches(code)
    body = code.replace("-", "")
    for index in range(len(body)):
        for replacement in fmt.alphabet:
            if replacement != body[index]:
                typo = body[:index] + replacement + body[index + 1 :]
                assert not fmt.matches(f"{typo[:3]}-{typo[3:]}"), typo


def test_blocklisted_words_are_never_generated() -> None:
    fmt = CodeFormat(alphabet="AB", length=6, blocklist=("aaa",))
    codes = {fmt.generate() for _ in range(300)}
    assert codes
    assert all("AAA" not in code for code in codes)
    assert not fmt.matches("AAABBB")


def test_case_sensitive_alphabet_keeps_case_in_the_key() -> None:
    fmt = CodeFormat(alphabet="base62", length=10)
    assert fmt.case_sensitive
    assert fmt.canonical("aB-cD") == "aBcD"
    assert not CodeFormat(alphabet="unambiguous", length=8).case_sensitive


def test_resolve_accepts_what_people_type() -> None:
    fmt = CodeFormat(alphabet="unambiguous", length=8, pattern="####-####")
    assert fmt.resolve(" ab3d-ef9h ") == "AB3DEF9H"
    assert fmt.resolve("AB3D EF9H") == "AB3DEF9H"
    assert fmt.resolve("AB3DEF9") is None  # too short
    assert fmt.resolve("AB3DEF9O") is None  # no O in this alphabet, and no 0 either: not a code of it


def test_resolve_keeps_case_for_case_sensitive_alphabets() -> None:
    fmt = CodeFormat(alphabet="base62", length=6)
    assert fmt.resolve("ab-12CD") == "ab12CD"


def test_resolve_maps_confusables_to_the_alphabets_own_characters() -> None:
    crockford = CodeFormat(alphabet="crockford", length=8)
    assert crockford.resolve("oIl2-5s8b") == "01125S8B"
    numeric = CodeFormat(alphabet="numeric", length=6)
    assert numeric.resolve("1O2-Z5S") == "102255"  # Z -> 2 and S -> 5: the numeric alphabet has no letters


def test_resolve_checks_the_affixes_and_the_check_character() -> None:
    fmt = CodeFormat(alphabet="numeric", length=6, prefix="VIP-", check="damm", pattern="###-####")
    code = fmt.generate()
    assert fmt.resolve(code) == fmt.canonical(code)
    assert fmt.resolve(code.lower().replace("-", " ")) == fmt.canonical(code)
    assert fmt.resolve("XYZ-" + code[4:]) is None
    body = code[4:].replace("-", "")
    typo = body[:-1] + str((int(body[-1]) + 1) % 10)
    with pytest.raises(CheckCharacterError):
        fmt.resolve("VIP-" + typo)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alphabet": "A", "length": 8}, "at least 2"),
        ({"alphabet": "AAB", "length": 8}, "repeats"),
        ({"alphabet": "AB-", "length": 8}, "separators"),
        ({"alphabet": "numeric", "length": 0}, "length"),
        ({"alphabet": "numeric", "length": 65}, "length"),
        ({"alphabet": "numeric", "length": 4, "pattern": "###-##"}, "pattern"),
        ({"alphabet": "numeric", "length": 4, "pattern": "##x##"}, "pattern"),
        ({"alphabet": "numeric", "length": 4, "check": "crc"}, "check"),
        ({"alphabet": "numeric", "length": 4, "prefix": "bad/prefix"}, "prefix"),
    ],
)
def test_invalid_formats_are_rejected_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CodeFormat(**kwargs)  # type: ignore[arg-type]


def _substitutions(code: str, alphabet: str) -> list[str]:
    return [code[:i] + c + code[i + 1 :] for i in range(len(code)) for c in alphabet if c != code[i]]


@pytest.mark.parametrize("preset", sorted(ALPHABET_PRESETS))
def test_luhn_catches_every_single_substitution_exhaustively(preset: str) -> None:
    """Every body of two characters, every single-character substitution anywhere in body or check character."""
    alphabet = ALPHABET_PRESETS[preset]
    fmt = CodeFormat(alphabet=preset, length=2, check="luhn", default_blocklist=False)
    for first in alphabet:
        for second in alphabet:
            body = first + second
            code = body + luhn_check_character(body, alphabet)
            assert fmt.matches(code)
            missed = [typo for typo in _substitutions(code, alphabet) if fmt.matches(typo)]
            assert missed == [], (code, missed[:3])


def test_luhn_on_an_odd_sized_alphabet_is_refused_because_it_would_miss_typos() -> None:
    odd = ALPHABET_PRESETS["unambiguous"][:23]
    # The reason, shown: with 23 characters some substitutions keep the check character.
    missed = [
        typo
        for body in (a + b for a in odd for b in odd)
        for typo in _substitutions(body, odd)
        if luhn_check_character(typo, odd) == luhn_check_character(body, odd)
    ]
    assert missed
    with pytest.raises(ConfigError, match="even size"):
        CodeFormat(alphabet=odd, length=6, check="luhn")
    assert CodeFormat(alphabet=odd, length=6).keyspace == 23**6  # without a check it is fine


@pytest.mark.parametrize(
    ("alphabet", "blocklist"),
    # Everything blocked; or all but BBBBBBBB, 1 code in 256.
    [("AB", ("A", "B")), ("numeric", tuple("0123456789")), ("AB", ("AA", "AB", "BA"))],
)
def test_a_blocklist_that_blocks_nearly_every_code_is_refused_at_load(
    alphabet: str, blocklist: tuple[str, ...]
) -> None:
    # Before, such a pool loaded and `generate` looped forever (refiller, prefetch and GET /pools hung).
    with pytest.raises(ConfigError, match="blocklist blocks"):
        CodeFormat(alphabet=alphabet, length=8, blocklist=blocklist)


def test_a_blocklist_that_leaves_codes_loads_and_generates() -> None:
    fmt = CodeFormat(alphabet="AB", length=4, blocklist=("AAA", "BBB"))
    codes = {fmt.generate() for _ in range(200)}
    assert codes
    assert all("AAA" not in code and "BBB" not in code for code in codes)
