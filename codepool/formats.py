"""Code formats: how a pool's codes look, how they are generated and how typed input is normalised.

Pure functions and value objects only: no I/O, no clock. Randomness always comes from `secrets`
(invariant 4) and is drawn when `generate` is called, never at import time.
"""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass, field
from math import log2

from codepool.errors import ConfigError

ALPHABET_PRESETS: dict[str, str] = {
    # No 0/O and 1/I: nothing a person can misread when typing a voucher.
    "unambiguous": "23456789ABCDEFGHJKLMNPQRSTUVWXYZ",
    "numeric": "0123456789",
    "uppercase": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "alphanumeric": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "crockford": "0123456789ABCDEFGHJKMNPQRSTVWXYZ",
    "hex": "0123456789ABCDEF",
    "base62": "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
}

# Characters people put between groups; they never carry meaning in a code.
SEPARATORS = frozenset(" \t-_.")
PLACEHOLDER = "#"
MAX_LENGTH = 64
MAX_AFFIX_LENGTH = 32
MAX_CODE_LENGTH = 160
"""Longest display form (prefix, laid-out body, postfix); it bounds the items a claim writes."""
CHECK_ALGORITHMS = ("luhn",)
BLOCKLIST_SAMPLE = 2_000
"""Bodies drawn (deterministically, seed 0) when a pool loads, to measure how much of it the blocklist blocks."""
MIN_UNBLOCKED_SHARE = 0.01
"""A blocklist may block at most 99 % of a pool's codes; more and generating one would take unbounded draws."""
MAX_BLOCKED_DRAWS = 10_000
"""Draws `generate` makes before it gives up: with at least 1 % unblocked, all of them blocked has odds below
10^-43, so reaching it means a broken pool, not bad luck."""
_AFFIX_PATTERN = re.compile(r"[A-Za-z0-9 \-_.]*")
_SEPARATOR_PATTERN = re.compile(r"[ \t\-_.]")


def resolve_alphabet(value: str) -> str:
    """A preset name or literal characters -> the alphabet's characters, validated."""
    alphabet = ALPHABET_PRESETS.get(value, value)
    if len(alphabet) < 2:
        raise ConfigError(f"alphabet {value!r} needs at least 2 characters (or one of {sorted(ALPHABET_PRESETS)})")
    if len(set(alphabet)) != len(alphabet):
        raise ConfigError(f"alphabet {value!r} repeats a character")
    bad = sorted({c for c in alphabet if c in SEPARATORS or c == PLACEHOLDER or not c.isprintable()})
    if bad or not alphabet.isascii():
        raise ConfigError(f"alphabet {value!r} may only hold printable ASCII without separators or '#'")
    return alphabet


def compact(text: str) -> str:
    """Typed input without separators: 'ab3d-ef9h ' -> 'ab3def9h'."""
    return _SEPARATOR_PATTERN.sub("", text)


def lookup_keys(text: str) -> list[str]:
    """The canonical forms a typed code may have, most specific first (see `CodeFormat.canonical`)."""
    exact = compact(text.strip())
    return list(dict.fromkeys([exact, exact.upper()]))


@dataclass(frozen=True, slots=True)
class CodeFormat:
    """The shape of a pool's codes.

    A code is `prefix + body + postfix`, where body is `length` random characters from `alphabet`, followed by
    one Luhn mod N check character when `check == "luhn"`; `pattern` (e.g. `"####-####"`) lays the body out
    in groups for display.
    """

    alphabet: str
    length: int
    prefix: str = ""
    postfix: str = ""
    pattern: str | None = None
    check: str | None = None
    blocklist: tuple[str, ...] = ()
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alphabet = resolve_alphabet(self.alphabet)
        object.__setattr__(self, "alphabet", alphabet)
        if not 1 <= self.length <= MAX_LENGTH:
            raise ConfigError(f"length must be between 1 and {MAX_LENGTH}, got {self.length}")
        for name, affix in (("prefix", self.prefix), ("postfix", self.postfix)):
            if len(affix) > MAX_AFFIX_LENGTH or not _AFFIX_PATTERN.fullmatch(affix):
                raise ConfigError(f"{name} {affix!r} must be at most {MAX_AFFIX_LENGTH} letters, digits or separators")
        if self.check is not None and self.check not in CHECK_ALGORITHMS:
            raise ConfigError(f"check must be one of {CHECK_ALGORITHMS}, got {self.check!r}")
        if self.check == "luhn" and len(alphabet) % 2:
            # Luhn mod N doubles every other character; for odd N the doubled sums are not a permutation of the
            # alphabet, so some single-character typos keep the same check character (about 1 % for N = 23, 31).
            raise ConfigError(
                f"check 'luhn' needs an alphabet of even size to catch every single-character typo; "
                f"this one has {len(alphabet)} characters: add or drop one"
            )
        if self.pattern is not None:
            slots = self.pattern.count(PLACEHOLDER)
            if slots != self.body_length:
                raise ConfigError(
                    f"pattern {self.pattern!r} has {slots} '#' but the code body has {self.body_length} "
                    "characters (length, plus 1 for a check character)"
                )
            if any(c != PLACEHOLDER and c not in SEPARATORS for c in self.pattern):
                raise ConfigError(f"pattern {self.pattern!r} may only hold '#' and separators ' -_.'")
        if self.display_length > MAX_CODE_LENGTH:
            raise ConfigError(f"codes would be {self.display_length} characters long; the most is {MAX_CODE_LENGTH}")
        object.__setattr__(self, "blocklist", tuple(word.upper() for word in self.blocklist if word))
        object.__setattr__(self, "_regex", self._build_regex())
        if self.blocklist:
            self._refuse_a_blocklist_that_blocks_nearly_everything()

    @property
    def body_length(self) -> int:
        return self.length + (1 if self.check else 0)

    @property
    def display_length(self) -> int:
        """Characters of every code in display form (they are ASCII, so also its bytes)."""
        layout = len(self.pattern) if self.pattern is not None else self.body_length
        return len(self.prefix) + layout + len(self.postfix)

    @property
    def case_sensitive(self) -> bool:
        """Whether two codes differing only in case are different codes."""
        return any(c.islower() for c in self.alphabet) and any(c.isupper() for c in self.alphabet)

    @property
    def keyspace(self) -> int:
        return int(len(self.alphabet) ** self.length)

    @property
    def entropy_bits(self) -> float:
        return self.length * log2(len(self.alphabet))

    def generate(self) -> str:
        """A fresh random code in display form; drawn again while it contains a blocked word."""
        for _ in range(MAX_BLOCKED_DRAWS):
            body = self._body(secrets.randbelow(self.keyspace))
            if not self._is_blocked(body):
                return self._display(body)
        raise ConfigError(f"{MAX_BLOCKED_DRAWS} codes in a row were blocked: the blocklist leaves almost no code")

    def _body(self, number: int) -> str:
        """`number` spelled out in base len(alphabet) (one CSPRNG draw per code: uniform, and far cheaper than
        one `secrets.choice` per character), plus the check character."""
        base = len(self.alphabet)
        digits = []
        for _ in range(self.length):
            number, digit = divmod(number, base)
            digits.append(self.alphabet[digit])
        body = "".join(digits)
        return body + luhn_check_character(body, self.alphabet) if self.check else body

    def _refuse_a_blocklist_that_blocks_nearly_everything(self) -> None:
        # A fixed seed: whether a pools file loads must not depend on chance (no codes are drawn from it).
        sample = random.Random(0)  # noqa: S311 - measuring the blocklist, not generating codes
        unblocked = sum(
            not self._is_blocked(self._body(sample.randrange(self.keyspace))) for _ in range(BLOCKLIST_SAMPLE)
        )
        if unblocked < MIN_UNBLOCKED_SHARE * BLOCKLIST_SAMPLE:
            raise ConfigError(
                f"the blocklist blocks {100 - 100 * unblocked / BLOCKLIST_SAMPLE:.1f} % of the codes tried "
                f"({BLOCKLIST_SAMPLE:,}); at most {100 - 100 * MIN_UNBLOCKED_SHARE:.0f} % may be blocked"
            )

    def canonical(self, code: str) -> str:
        """The identity of a code: separators removed, case folded unless the alphabet is case-sensitive.

        It is the DynamoDB key of the code, so the same code typed differently finds the same record and
        two pools with overlapping formats can never issue the same code twice.
        """
        value = compact(code)
        return value if self.case_sensitive else value.upper()

    def matches(self, code: str) -> bool:
        """Whether `code` (display form) is a well-formed code of this format, check character included."""
        match = self._regex.fullmatch(code)
        if match is None:
            return False
        body = "".join(group for group in match.groups())
        if self.check and luhn_check_character(body[:-1], self.alphabet) != body[-1]:
            return False
        return not self._is_blocked(body)

    def _display(self, body: str) -> str:
        if self.pattern is None:
            return f"{self.prefix}{body}{self.postfix}"
        chars = iter(body)
        laid_out = "".join(next(chars) if c == PLACEHOLDER else c for c in self.pattern)
        return f"{self.prefix}{laid_out}{self.postfix}"

    def _is_blocked(self, body: str) -> bool:
        upper = body.upper()
        return any(word in upper for word in self.blocklist)

    def _build_regex(self) -> re.Pattern[str]:
        char_class = "[" + re.escape(self.alphabet) + "]"
        layout = self.pattern if self.pattern is not None else PLACEHOLDER * self.body_length
        parts = []
        for run in re.finditer(r"#+|[^#]+", layout):
            text = run.group()
            parts.append(f"({char_class}{{{len(text)}}})" if text[0] == PLACEHOLDER else re.escape(text))
        return re.compile(re.escape(self.prefix) + "".join(parts) + re.escape(self.postfix))


def luhn_check_character(body: str, alphabet: str) -> str:
    """Luhn mod N check character: catches every single-character typo and most adjacent swaps."""
    n = len(alphabet)
    factor = 2
    total = 0
    for char in reversed(body):
        addend = factor * alphabet.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return alphabet[(n - total % n) % n]
