"""codepool.blocklist: folding, the shipped default list and matching, checked against this file's own reading of
the documented look-alike classes rather than the module's table."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import string
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from codepool.blocklist import DEFAULT_LIST_SOURCE, Blocklist, default_words, fold

CLASSES = {
    "A": "Aa4@",
    "B": "Bb8",
    "E": "Ee3",
    "G": "Gg69",
    "I": "IiLl1!|",
    "O": "Oo0",
    "S": "Ss5$",
    "T": "Tt7+",
    "Z": "Zz2",
}
"""Each canonical letter with every character that reads as it, both cases: the module docstring's table."""
SEPARATORS = " \t-_."
FOLDING_ALPHABET = "".join(CLASSES.values()) + SEPARATORS + "CcKkXxYy#"
DATA = resources.files("codepool") / "data"


def look_alikes(char: str) -> str:
    """Every character that folds to `char` (an upper-case letter or any other character that folding keeps)."""
    return next((members for members in CLASSES.values() if char in members), char + char.lower())


def reference_regex(words: list[str]) -> re.Pattern[str]:
    """A slow, independent matcher: each word as a run of look-alike classes with any separators in between."""
    between = f"[{re.escape(SEPARATORS)}]*"
    alternatives = []
    for word in words:
        letters = [char for char in word.upper() if char not in SEPARATORS]
        alternatives.append(between.join(f"[{re.escape(look_alikes(char))}]" for char in letters))
    return re.compile("|".join(alternatives))


@st.composite
def disguised_default_word(draw: st.DrawFn) -> str:
    """A default word, each character any of its look-alikes, separators between them, inside random text."""
    word = draw(st.sampled_from(default_words()))
    body = "".join(draw(st.sampled_from(look_alikes(char))) + draw(st.text(SEPARATORS, max_size=2)) for char in word)
    return draw(st.text(max_size=6)) + body + draw(st.text(max_size=6))


@settings(max_examples=500, deadline=None)
@given(disguised_default_word())
def test_every_disguise_of_a_default_word_is_blocked(code: str) -> None:
    assert Blocklist().blocks(code)
    assert Blocklist(["QQQ"]).blocks(code)


SMALL_LIST = ["L0L", "ass", "b1g", "X", "zz", "T-T"]


@settings(max_examples=1000, deadline=None)
@given(st.text(FOLDING_ALPHABET, max_size=12))
def test_blocks_agrees_with_a_slow_reference(code: str) -> None:
    expected = reference_regex(SMALL_LIST).search(code) is not None
    assert Blocklist(SMALL_LIST, include_default=False).blocks(code) is expected


@settings(max_examples=1000, deadline=None)
@given(st.text(FOLDING_ALPHABET, max_size=12))
def test_blocked_word_names_what_blocks_finds(code: str) -> None:
    """`blocked_word` finds a word exactly where `blocks` does; the spelling is a part of the code that folds to
    the word (separators inside it included)."""
    blocklist = Blocklist(SMALL_LIST, include_default=False)
    found = blocklist.blocked_word(code)
    assert (found is not None) is blocklist.blocks(code)
    if found is not None:
        word, spelling = found
        assert spelling in code
        assert fold(spelling) == word
        assert word in {fold(listed) for listed in SMALL_LIST}


def test_blocked_word_points_back_into_the_code() -> None:
    assert Blocklist(SMALL_LIST, include_default=False).blocked_word("PROMO-a-5-$-9") == ("ASS", "a-5-$")
    assert Blocklist(include_default=False).blocked_word("anything") is None


def test_the_reference_is_not_trivial() -> None:
    blocklist = Blocklist(SMALL_LIST, include_default=False)
    for code in ("1-o-L", "@5$", "8|9", "x", "Z.2", "7+", "a_b_c_l0|"):
        assert blocklist.blocks(code), code
    for code in ("", "LO", "AS", "BIC", "Z", "T", "CKY#"):
        assert not blocklist.blocks(code), code


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_no_words_and_no_default_blocks_nothing(code: str) -> None:
    assert not Blocklist(include_default=False).blocks(code)
    assert not Blocklist(["", "-", " . "], include_default=False).blocks(code)


def test_whether_there_is_anything_to_block() -> None:
    assert not Blocklist(include_default=False)
    assert not Blocklist(["", "-_."], include_default=False), "words of separators only block nothing"
    assert Blocklist(["x"], include_default=False)
    assert Blocklist()


def test_pool_words_alone() -> None:
    blocklist = Blocklist(["abc", ""], include_default=False)
    assert blocklist.words == ("ABC",)
    assert blocklist.blocks("xxABCxx")
    assert blocklist.blocks("PROMO-@8C-1234")
    assert not blocklist.blocks("ACB")
    assert not blocklist.blocks("SHIT"), "the default list is off"


def test_single_letter_words_block_every_code_of_their_alphabet() -> None:
    for include_default in (False, True):
        blocklist = Blocklist(["A", "B"], include_default=include_default)
        assert blocklist.blocks("ABAB")
        assert all(blocklist.blocks("".join(code)) for code in itertools.product("AB", repeat=4))


def test_compares_and_hashes_by_its_words_and_the_default_flag() -> None:
    first, second = Blocklist(["ab"]), Blocklist(("AB",))
    assert first.blocks("xab")  # a compiled regex in one of them changes nothing
    assert first == second
    assert hash(first) == hash(second)
    assert first != Blocklist(["ab"], include_default=False)
    assert first != Blocklist(["ab", "cd"])
    assert len({first, second, Blocklist(["ab"], include_default=False)}) == 2


def test_fold_maps_every_look_alike_to_its_canonical_letter() -> None:
    for canonical, members in CLASSES.items():
        assert fold(members) == canonical * len(members)
    assert fold(" a-5\t5._h0l3 ") == "ASSHOIE"
    assert fold("C#k") == "C#K", "other characters are kept"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@settings(max_examples=300, deadline=None)
@given(st.text(string.printable))
def test_fold_ignores_case(text: str) -> None:
    assert fold(text.lower()) == fold(text.upper()) == fold(text)


def test_the_data_file_is_folded_minimal_and_is_the_default_list() -> None:
    text = (DATA / "blocklist-en.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert text.endswith("\n")
    assert tuple(lines) == default_words()
    assert lines == sorted(set(lines)), "sorted, no duplicates"
    for line in lines:
        assert re.fullmatch("[A-Z]{3,}", line), line
        assert fold(line) == line, line
    redundant = [(short, long) for short in lines for long in lines if short != long and short in long]
    assert not redundant, "a word containing another listed word is redundant"


def test_the_data_file_names_its_source_and_licence() -> None:
    data = (DATA / "blocklist-en.txt").read_bytes()
    notice = (DATA / "BLOCKLIST-SOURCE.md").read_text(encoding="utf-8")
    for required in ("naughty-words", "1.2.0", "CC-BY-4.0", "CC BY 4.0", "Shutterstock", "creativecommons.org"):
        assert required in notice, required
    assert f"{len(data.splitlines())} words" in notice
    assert hashlib.sha256(data).hexdigest() in notice, "the notice's sha256 is the data file's"
    assert "\n" not in DEFAULT_LIST_SOURCE
    assert "naughty-words 1.2.0" in DEFAULT_LIST_SOURCE
    assert "CC-BY-4.0" in DEFAULT_LIST_SOURCE


def test_the_default_list_leaves_typical_pools_nearly_whole() -> None:
    blocklist = Blocklist()
    numeric_4 = sum(blocklist.blocks("".join(code)) for code in itertools.product(string.digits, repeat=4))
    assert numeric_4 / 10**4 < 0.01
    draws = random.Random(0)
    unambiguous = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    sample = 20_000
    blocked = sum(blocklist.blocks("".join(draws.choices(unambiguous, k=8))) for _ in range(sample))
    assert blocked / sample < 0.015
