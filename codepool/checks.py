"""Check characters: one extra character that lets a typed code be rejected before any look-up.

| scheme      | alphabets                  | catches (proven exhaustively in tests/unit/test_checks.py)                |
| ----------- | -------------------------- | ------------------------------------------------------------------------- |
| `luhn`      | any of even size N         | every single-character substitution; every adjacent transposition except  |
|             |                            | of the alphabet's first and last characters (like Luhn's 09 <-> 90)       |
| `damm`      | 10 characters (`numeric`)  | every single-character substitution and every adjacent transposition      |
| `crockford` | `crockford` only           | every single-character substitution and every adjacent transposition      |
|             |                            | (Crockford's check symbol: the body's value mod 37, a prime; 37 symbols)  |

A character's value is its index in the alphabet. Pure functions, no state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CROCKFORD_CHECK_SYMBOLS = CROCKFORD_ALPHABET + "*~$=U"
"""Crockford's 37 check symbols: the 32 digits, then `*~$=U` for the values 32-36."""

# The quasigroup of order 10 from H. M. Damm's thesis (2004): weakly totally anti-symmetric, with a zero diagonal.
_DAMM_TABLE = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def luhn_character(body: str, alphabet: str) -> str:
    """Luhn mod N: double every other value from the right, add the digits of each (in base N)."""
    n = len(alphabet)
    factor = 2
    total = 0
    for char in reversed(body):
        addend = factor * alphabet.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return alphabet[(n - total % n) % n]


def damm_character(body: str, alphabet: str) -> str:
    interim = 0
    for char in body:
        interim = _DAMM_TABLE[interim][alphabet.index(char)]
    return alphabet[interim]


def mod37_character(body: str, alphabet: str) -> str:
    value = 0
    for char in body:
        value = value * 32 + alphabet.index(char)
    return CROCKFORD_CHECK_SYMBOLS[value % 37]


def _luhn_refusal(alphabet: str) -> str | None:
    if len(alphabet) % 2:
        # For odd N, doubling is not a permutation of the values, so some substitutions keep the check character
        # (about 1 % of them for N = 23 or 31).
        return (
            f"check 'luhn' needs an alphabet of even size to catch every single-character typo; "
            f"this one has {len(alphabet)} characters: add or drop one, or use another check"
        )
    return None


def _damm_refusal(alphabet: str) -> str | None:
    if len(alphabet) != 10:
        return f"check 'damm' works on 10-character alphabets (such as 'numeric'); this one has {len(alphabet)}"
    return None


def _mod37_refusal(alphabet: str) -> str | None:
    if alphabet != CROCKFORD_ALPHABET:
        return "check 'crockford' is Crockford's check symbol: it needs alphabet = 'crockford'"
    return None


@dataclass(frozen=True, slots=True)
class CheckScheme:
    name: str
    character: Callable[[str, str], str]
    """(body, alphabet) -> the check character appended to the body."""
    refusal: Callable[[str], str | None]
    """Why the scheme cannot keep its promise on an alphabet, or None."""
    extra_symbols: str = ""
    """Check characters beyond the alphabet's own."""

    def symbols(self, alphabet: str) -> str:
        """Every character the check position can hold."""
        return alphabet + self.extra_symbols


SCHEMES: dict[str, CheckScheme] = {
    "luhn": CheckScheme("luhn", luhn_character, _luhn_refusal),
    "damm": CheckScheme("damm", damm_character, _damm_refusal),
    "crockford": CheckScheme("crockford", mod37_character, _mod37_refusal, extra_symbols="*~$=U"),
}
