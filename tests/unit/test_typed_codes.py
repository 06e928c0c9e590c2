"""Properties of codes as people type them: every code, typed in any way a reader may, finds itself; no code a pool
can issue spells a blocked word in any leet or look-alike form, across separators and affixes."""

from __future__ import annotations

import re
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from codepool.blocklist import default_words
from codepool.formats import SEPARATORS, CodeFormat

FORMATS = [
    CodeFormat(alphabet="unambiguous", length=8, pattern="####-####"),
    CodeFormat(alphabet="crockford", length=8, check="crockford", pattern="###-###-###"),
    CodeFormat(alphabet="numeric", length=6, check="damm", prefix="VIP-"),
    CodeFormat(alphabet="numeric", length=4, check="luhn", postfix=".X"),
    CodeFormat(alphabet="hex", length=6, check="luhn"),
    CodeFormat(alphabet="alphanumeric", length=6, prefix="Promo "),
    CodeFormat(alphabet="uppercase", length=6),
    CodeFormat(alphabet="base62", length=6, prefix="id_"),
    CodeFormat(alphabet="abcdefghjkmnpqrstuvwxyz", length=5),  # a literal lower-case alphabet
]


def _typed_forms(fmt: CodeFormat, char: str, *, body: bool) -> list[str]:
    """Every character a person may type for `char`: itself, its other case (unless case matters), and, in the
    body, each confusable the format maps to it."""
    forms = {char}
    if body:
        forms |= {typed for typed, meant in fmt._typed.items() if meant in (char, char.upper())}
    if not fmt.case_sensitive:
        forms |= {form.swapcase() for form in forms}
    return sorted(forms)


@st.composite
def typed_code(draw: st.DrawFn) -> tuple[CodeFormat, str, str]:
    fmt = draw(st.sampled_from(FORMATS))
    code = None
    while code is None:  # a blocked number has no code; draw another
        number = draw(st.integers(0, fmt.keyspace - 1))
        code = fmt.code_for(number)
    prefix, postfix = fmt.prefix, fmt.postfix
    body = fmt._body(number)
    parts = [(char, False) for char in prefix] + [(char, True) for char in body] + [(char, False) for char in postfix]
    separator = st.text(alphabet=sorted(SEPARATORS), max_size=2)
    typed = draw(separator)
    for char, in_body in parts:
        if char in SEPARATORS:
            continue  # the affix's own separators are optional when typed
        typed += draw(st.sampled_from(_typed_forms(fmt, char, body=in_body))) + draw(separator)
    return fmt, code, typed


@settings(max_examples=1500, deadline=None)
@given(typed_code())
def test_every_code_typed_with_any_case_separators_and_confusables_finds_itself(
    case: tuple[CodeFormat, str, str],
) -> None:
    fmt, code, typed = case
    assert fmt.resolve(typed) == fmt.canonical(code), (code, typed)


# The table, applied independently of `codepool.blocklist.fold`: the default list is stored folded, so a
# letter of a stored word stands for itself and its leet digit; I stands for I, L and 1 (they fold together).
_REFERENCE_FORMS = {"O": "O0", "I": "IL1", "E": "E3", "A": "A4", "S": "S5", "T": "T7", "B": "B8"}
_GAP = "[" + re.escape("".join(sorted(SEPARATORS))) + "]*"


@cache
def _reference_pattern() -> re.Pattern[str]:
    def letter(char: str) -> str:
        forms = _REFERENCE_FORMS.get(char, char)
        return "[" + re.escape(forms + forms.lower()) + "]"

    return re.compile("|".join(_GAP.join(letter(char) for char in word) for word in default_words()))


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(FORMATS), st.data())
def test_no_issuable_code_contains_a_blocked_word_in_any_form(fmt: CodeFormat, data: st.DataObject) -> None:
    number = data.draw(st.integers(0, fmt.keyspace - 1))
    code = fmt.code_for(number)
    if code is not None:
        assert not _reference_pattern().search(code), code


def test_generated_codes_never_contain_a_blocked_word_in_any_form() -> None:
    for fmt in FORMATS:
        for _ in range(300):
            code = fmt.generate()
            assert not _reference_pattern().search(code), code


def test_the_reference_really_finds_leet_words_across_separators() -> None:
    # The property above must be able to fail: a display form with a blocked word split by a separator.
    fmt = CodeFormat(alphabet="numeric", length=6, pattern="##-####", default_blocklist=False)
    code = fmt.code_for(int("554" + "000"[::-1], 10))  # digits are laid out little-endian: body "000455"
    assert code is not None
    assert code.replace("-", "").endswith("455")
    assert _reference_pattern().search(code)
    blocking = CodeFormat(alphabet="numeric", length=6, pattern="##-####")
    assert blocking.code_for(554) is None


def test_a_pool_can_turn_the_default_list_off() -> None:
    fmt = CodeFormat(alphabet="numeric", length=3, default_blocklist=False)
    assert fmt.code_for(554) == "455"
    assert CodeFormat(alphabet="numeric", length=3).code_for(554) is None
    assert CodeFormat(alphabet="numeric", length=3, default_blocklist=False, blocklist=("455",)).code_for(554) is None
