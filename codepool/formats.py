"""Code formats: how a pool's codes look, how they are generated and how typed input is normalised.

Pure functions and value objects only: no I/O, no clock. Randomness always comes from `secrets`
(invariant 4) and is drawn when `generate` is called, never at import time.
"""

from __future__ import annotations

import os
import random
import re
import secrets
from dataclasses import dataclass, field
from functools import cache
from math import log2, prod

from codepool.blocklist import Blocklist, default_words, fold
from codepool.checks import SCHEMES, CheckScheme
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
CHECK_ALGORITHMS = tuple(SCHEMES)
CONFUSABLE_GROUPS = ("0Oo", "1IiLl|", "2Zz", "5Ss", "8B")
"""Characters people mistake for one another when reading a code aloud or off a receipt. Typed input is mapped to
the alphabet's own member of a group when the alphabet holds exactly one member of it (see `confusables`)."""
BLOCKLIST_SAMPLE = 2_000
"""Bodies drawn (deterministically, seed 0) when a pool loads, to measure how much of it the blocklist blocks."""
MIN_UNBLOCKED_SHARE = 0.01
"""A blocklist may block at most 99 % of a pool's codes; more and generating one would take unbounded draws."""
MAX_BLOCKED_SHARE_BOUND = 0.5
"""Below this union bound on the share of codes the blocklist blocks (the odds of each word at each position,
summed), no sample is needed to know the pool leaves codes: the usual case, which keeps pool loading cheap."""
EXACT_USABLE_LIMIT = 10_000
"""Keyspaces up to this size count their unblocked codes exactly (one pass, about 30 ms, once per container: the
first `GET /pools/{pool}` pays it); larger ones estimate from a sample."""
MAX_BLOCKED_DRAWS = 10_000
"""Draws `generate` makes before it gives up: with at least 1 % unblocked, all of them blocked has odds below
10^-43, so reaching it means a broken pool, not bad luck."""
TYPABLE = "".join(chr(point) for point in range(0x21, 0x7F))
"""The characters a reading of a code is worked out for (`CodeFormat.positions`): printable ASCII, the only
characters a code can show; anything else a person types is a separator or makes the text no code."""
_AFFIX_PATTERN = re.compile(r"[A-Za-z0-9 \-_.]*")
TYPED_SEPARATORS = SEPARATORS | frozenset(
    # Every Unicode space (Zs) and the zero-width space, every Unicode dash (Pd) and the minus sign: what a code
    # pasted from a document or a chat carries between its groups.
    "\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200C))) + "\u202f\u205f\u3000"
    "\u058a\u05be\u1400\u1806" + "".join(map(chr, range(0x2010, 0x2016))) + "\u2212\u2e17\u2e1a\u2e3a\u2e3b\u2e40"
    "\u2e5d\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"
)
"""What `compact` drops from typed text: the separators, and their Unicode look-alikes."""
_SEPARATOR_PATTERN = re.compile("[" + re.escape("".join(sorted(TYPED_SEPARATORS))) + "]")


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
    """Typed input without separators: 'ab3d-ef9h ' -> 'ab3def9h'; Unicode dashes and spaces (pasted) too."""
    return _SEPARATOR_PATTERN.sub("", text)


class CheckCharacterError(ValueError):
    """Typed text has a format's shape but its check character does not match: a typo, caught before any read."""


def confusables(alphabet: str, case_sensitive: bool) -> dict[str, str]:
    """Typed character -> the alphabet's character it stands for, for each confusable group with exactly one
    member in the alphabet (compared after case folding unless the alphabet is case-sensitive)."""
    folded = alphabet if case_sensitive else alphabet.upper()
    mapping: dict[str, str] = {}
    for group in CONFUSABLE_GROUPS:
        members = group if case_sensitive else "".join(dict.fromkeys(group.upper()))
        own = [char for char in members if char in folded]
        if len(own) == 1:
            mapping.update({char: own[0] for char in members if char != own[0]})
    return mapping


@dataclass(frozen=True, slots=True)
class Position:
    """One character position of a format's codes, separators removed (the form `resolve` reads)."""

    shown: frozenset[str]
    """The characters this format's codes show here."""
    reads: dict[str, str]
    """Typed character -> the character of the key `resolve` reads it as, for each character accepted here."""
    check: bool = False
    """The check character: whether `resolve` accepts the text also depends on the characters before it."""


@dataclass(frozen=True, slots=True)
class CodeFormat:
    """The shape of a pool's codes.

    A code is `prefix + body + postfix`, where body is `length` random characters from `alphabet`, followed by
    one check character when `check` names a scheme (`codepool.checks`); `pattern` (e.g. `"####-####"`) lays the
    body out in groups for display. No code contains a word of the pool's `blocklist` or, unless
    `default_blocklist` is off, of the shipped offensive-word list (`codepool.blocklist`), in any leet or
    confusable form, across separators and affixes.
    """

    alphabet: str
    length: int
    prefix: str = ""
    postfix: str = ""
    pattern: str | None = None
    check: str | None = None
    blocklist: tuple[str, ...] = ()
    default_blocklist: bool = True
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _blocked: Blocklist = field(init=False, repr=False, compare=False)
    _typed: dict[str, str] = field(init=False, repr=False, compare=False)
    # Derived once: `generate` and `canonical` run for every code a refill writes.
    _case_sensitive: bool = field(init=False, repr=False, compare=False)
    _keyspace: int = field(init=False, repr=False, compare=False)
    _pairs: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alphabet = resolve_alphabet(self.alphabet)
        object.__setattr__(self, "alphabet", alphabet)
        case_sensitive = any(c.islower() for c in alphabet) and any(c.isupper() for c in alphabet)
        object.__setattr__(self, "_case_sensitive", case_sensitive)
        if not 1 <= self.length <= MAX_LENGTH:
            raise ConfigError(f"length must be between 1 and {MAX_LENGTH}, got {self.length}")
        object.__setattr__(self, "_keyspace", int(len(alphabet) ** self.length))
        object.__setattr__(self, "_pairs", ())
        for name, affix in (("prefix", self.prefix), ("postfix", self.postfix)):
            if len(affix) > MAX_AFFIX_LENGTH or not _AFFIX_PATTERN.fullmatch(affix):
                raise ConfigError(f"{name} {affix!r} must be at most {MAX_AFFIX_LENGTH} letters, digits or separators")
        if self.check is not None:
            if self.check not in SCHEMES:
                raise ConfigError(f"check must be one of {CHECK_ALGORITHMS}, got {self.check!r}")
            refusal = SCHEMES[self.check].refusal(alphabet)
            if refusal is not None:
                raise ConfigError(refusal)
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
        object.__setattr__(self, "_blocked", Blocklist(self.blocklist, include_default=self.default_blocklist))
        object.__setattr__(self, "_regex", self._build_regex())
        object.__setattr__(self, "_typed", confusables(alphabet, self.case_sensitive))
        if self._blocked:
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
        return self._case_sensitive

    @property
    def keyspace(self) -> int:
        return self._keyspace

    @property
    def scheme(self) -> CheckScheme | None:
        return SCHEMES[self.check] if self.check else None

    def usable_keyspace(self) -> int:
        """Codes the format can issue: the keyspace less the blocked ones (exact up to EXACT_USABLE_LIMIT codes,
        estimated from a fixed sample above it)."""
        return _usable_keyspace(self)

    def code_for(self, number: int) -> str | None:
        """The code numbered `number` (0 <= number < keyspace) in display form, or None if it is blocked: the
        refiller's sweep walks the keyspace with it once random draws stop paying."""
        body = self._body(number)
        return None if self._is_blocked(body) else self._display(body)

    @property
    def entropy_bits(self) -> float:
        return self.length * log2(len(self.alphabet))

    def random_key(self) -> str:
        """A uniformly random key of the keyspace, blocked or not: where a scan of the pool may start. Without the
        blocklist, so a claim never compiles it (its regex took 12 ms of the issuer's first request)."""
        return self.canonical(self._display(self._body(secrets.randbelow(self.keyspace))))

    def generate(self) -> str:
        """A fresh random code in display form; drawn again while it contains a blocked word."""
        return self.generate_many(1)[0]

    def generate_many(self, count: int) -> list[str]:
        """`count` fresh random codes in display form, each drawn as `secrets.randbelow(keyspace)` draws (the bits
        `SystemRandom.getrandbits` would take, a number out of range drawn again, a blocked code drawn again), from
        one `os.urandom` read per batch instead of one per code: a refill draws millions. Repeats are possible, as
        with any independent draws."""
        keyspace = self.keyspace
        bits = keyspace.bit_length()
        width = (bits + 7) // 8
        excess = width * 8 - bits
        body_of, is_blocked, display = self._body, self._is_blocked, self._display
        codes: list[str] = []
        blocked_in_a_row = 0
        while len(codes) < count:
            # A number is in range with odds keyspace / 2**bits >= 1/2: twice the bytes usually do.
            randomness = os.urandom(2 * width * (count - len(codes)))
            for start in range(0, len(randomness), width):
                number = int.from_bytes(randomness[start : start + width], "big") >> excess
                if number >= keyspace:
                    continue
                body = body_of(number)
                if is_blocked(body):
                    blocked_in_a_row += 1
                    if blocked_in_a_row >= MAX_BLOCKED_DRAWS:
                        raise ConfigError(
                            f"{MAX_BLOCKED_DRAWS} codes in a row were blocked: the blocklist leaves almost no code"
                        )
                    continue
                blocked_in_a_row = 0
                codes.append(display(body))
                if len(codes) == count:
                    break
        return codes

    def _body(self, number: int) -> str:
        """`number` spelled out in base len(alphabet), least significant digit first, plus the check character
        (one CSPRNG draw per code: uniform, and far cheaper than one `secrets.choice` per character). Two digits
        at a time from a table of every pair: half the divisions, the same characters."""
        pairs, base = self._digit_pairs(), len(self.alphabet)
        square = base * base
        parts = []
        for _ in range(self.length // 2):
            number, pair = divmod(number, square)
            parts.append(pairs[pair])
        if self.length % 2:
            parts.append(self.alphabet[number % base])
        body = "".join(parts)
        scheme = self.scheme
        return body + scheme.character(body, self.alphabet) if scheme else body

    def _digit_pairs(self) -> tuple[str, ...]:
        """Every two-digit string, indexed by its value (low digit first); built on first use."""
        pairs = self._pairs
        if not pairs:
            base, alphabet = len(self.alphabet), self.alphabet
            pairs = tuple(alphabet[value % base] + alphabet[value // base] for value in range(base * base))
            object.__setattr__(self, "_pairs", pairs)
        return pairs

    def _refuse_a_blocklist_that_blocks_nearly_everything(self) -> None:
        for name, affix in (("prefix", self.prefix), ("postfix", self.postfix)):
            if affix and self._blocked.blocks(affix):
                raise ConfigError(f"the {name} {affix!r} contains a blocked word, so every code would be blocked")
        if self._blocked_share_bound() < MAX_BLOCKED_SHARE_BOUND:
            return
        unblocked = round(_unblocked_share(self) * BLOCKLIST_SAMPLE)
        if unblocked < MIN_UNBLOCKED_SHARE * BLOCKLIST_SAMPLE:
            raise ConfigError(
                f"the blocklist blocks {100 - 100 * unblocked / BLOCKLIST_SAMPLE:.1f} % of the codes tried "
                f"({BLOCKLIST_SAMPLE:,}); at most {100 - 100 * MIN_UNBLOCKED_SHARE:.0f} % may be blocked"
            )

    def _blocked_share_bound(self) -> float:
        """An upper bound on the share of codes holding a blocked word: for each word, its odds at one position
        (the share of alphabet characters folding to each of its letters, multiplied) times its positions."""
        share_of: dict[str, float] = {}
        for char in self.alphabet:
            folded = fold(char)
            share_of[folded] = share_of.get(folded, 0.0) + 1 / len(self.alphabet)
        words = (
            {*default_words(), *(fold(word) for word in self.blocklist)}
            if self.default_blocklist
            else {fold(word) for word in self.blocklist}
        )
        bound = 0.0
        for word in words:
            positions = self.body_length - len(word) + 1
            if positions > 0 and word:
                bound += positions * prod(share_of.get(letter, 0.0) for letter in word)
        return bound

    def positions(self) -> tuple[Position, ...]:
        """What this format shows and reads at each position of a code without separators: how two pools are
        checked for codes one could read as the other's (`codepool.overlaps`)."""
        return _positions(self)

    def key_share(self, key: str) -> float:
        """The share of this format's keys that sort at or before `key` (a `canonical` key): each character of a
        generated code is uniform and independent of the others, so it is the key's rank in a keyspace ordered
        as DynamoDB orders sort keys (by code point). What a count of the first keys of a shard is scaled by."""
        digits = sorted(self.canonical(self.alphabet))
        body = key[len(self.canonical(self.prefix)) :][: self.length]
        share, scale = 0.0, 1.0
        for char in body:
            scale /= len(digits)
            share += sum(digit < char for digit in digits) * scale
        return min(1.0, share + scale)

    def canonical(self, code: str) -> str:
        """The identity of a code: separators removed, case folded unless the alphabet is case-sensitive.

        It is the DynamoDB key of the code, so the same code typed differently finds the same record and
        two pools with overlapping formats can never issue the same code twice.
        """
        value = compact(code)
        return value if self.case_sensitive else value.upper()

    def resolve(self, typed: str) -> str | None:
        """The key (`canonical` form) of the code of this format a person typed, or None if the text cannot be
        one: separators and spaces ignored, case folded unless the alphabet is case-sensitive, confusable
        characters mapped to the alphabet's own (`confusables`). Raises `CheckCharacterError` when the text has
        the shape of a code but a wrong check character. The blocklist is not applied: a code issued before a
        word was added to it must stay findable."""
        text = compact(typed.strip())
        if not self.case_sensitive:
            text = text.upper()
        prefix, postfix = self.canonical(self.prefix), self.canonical(self.postfix)
        if len(text) != len(prefix) + self.body_length + len(postfix):
            return None
        if not (text.startswith(prefix) and text.endswith(postfix)):
            return None
        typed_body = text[len(prefix) : len(text) - len(postfix)]
        body = "".join(self._typed.get(char, char) for char in typed_body)
        alphabet = self.alphabet if self.case_sensitive else self.alphabet.upper()
        scheme = self.scheme
        letters = body[:-1] if scheme else body
        if any(char not in alphabet for char in letters):
            return None
        if scheme is not None:
            check = body[-1]
            if check not in scheme.symbols(alphabet):
                return None
            if scheme.character(letters, alphabet) != check:
                raise CheckCharacterError(f"the check character of {typed!r} is wrong: a typo?")
        return prefix + body + postfix

    def display_of(self, key: str) -> str:
        """The display form of the code whose key (`canonical` form) is `key`, a key `resolve` returned."""
        prefix, postfix = self.canonical(self.prefix), self.canonical(self.postfix)
        body = key[len(prefix) : len(key) - len(postfix)]
        if not self.case_sensitive:
            symbols = self.scheme.symbols(self.alphabet) if self.scheme else self.alphabet
            own = {char.upper(): char for char in symbols}
            body = "".join(own.get(char, char) for char in body)
        return self._display(body)

    def is_blocked(self, code: str) -> bool:
        """Whether a code (any form) spells a blocked word: such a code is never generated, nor imported."""
        return bool(self._blocked) and self._blocked.blocks(code)

    def matches(self, code: str) -> bool:
        """Whether `code` (display form) is a well-formed code of this format, check character included."""
        match = self._regex.fullmatch(code)
        if match is None:
            return False
        body = "".join(group for group in match.groups())
        scheme = self.scheme
        if scheme is not None and scheme.character(body[:-1], self.alphabet) != body[-1]:
            return False
        return not self._is_blocked(body)

    def _display(self, body: str) -> str:
        if self.pattern is None:
            return f"{self.prefix}{body}{self.postfix}"
        chars = iter(body)
        laid_out = "".join(next(chars) if c == PLACEHOLDER else c for c in self.pattern)
        return f"{self.prefix}{laid_out}{self.postfix}"

    def _is_blocked(self, body: str) -> bool:
        # Affixes included: a word may start in the prefix and end in the body.
        return bool(self._blocked) and self._blocked.blocks(self.prefix + body + self.postfix)

    def _build_regex(self) -> re.Pattern[str]:
        layout = self.pattern if self.pattern is not None else PLACEHOLDER * self.body_length
        body_class = "[" + re.escape(self.alphabet) + "]"
        scheme = self.scheme
        check_class = "[" + re.escape(scheme.symbols(self.alphabet)) + "]" if scheme else body_class
        parts = []
        slots_left = self.body_length
        for run in re.finditer(r"#+|[^#]+", layout):
            text = run.group()
            if text[0] != PLACEHOLDER:
                parts.append(re.escape(text))
                continue
            slots_left -= len(text)
            if scheme is not None and slots_left == 0:
                # The check character may be one of the scheme's extra symbols (Crockford's `*~$=U`).
                parts.append(f"({body_class}{{{len(text) - 1}}}{check_class})")
            else:
                parts.append(f"({body_class}{{{len(text)}}})")
        return re.compile(re.escape(self.prefix) + "".join(parts) + re.escape(self.postfix))


@cache
def _unblocked_share(fmt: CodeFormat) -> float:
    # A fixed seed: whether a pools file loads must not depend on chance (no codes are drawn from it).
    sample = random.Random(0)  # noqa: S311 - measuring the blocklist, not generating codes
    unblocked = sum(not fmt._is_blocked(fmt._body(sample.randrange(fmt.keyspace))) for _ in range(BLOCKLIST_SAMPLE))
    return unblocked / BLOCKLIST_SAMPLE


@cache
def _usable_keyspace(fmt: CodeFormat) -> int:
    if not fmt._blocked:
        return fmt.keyspace
    if fmt.keyspace <= EXACT_USABLE_LIMIT:
        return sum(fmt.code_for(number) is not None for number in range(fmt.keyspace))
    return round(fmt.keyspace * _unblocked_share(fmt))


@cache
def _positions(fmt: CodeFormat) -> tuple[Position, ...]:
    def folded(char: str) -> str:
        return char if fmt.case_sensitive else char.upper()

    def body_position(shown: str, accepted: str, check: bool = False) -> Position:
        reads = {}
        for typed in TYPABLE:
            read = fmt._typed.get(folded(typed), folded(typed))
            if read in accepted:
                reads[typed] = read
        return Position(shown=frozenset(shown), reads=reads, check=check)

    def affix_position(char: str) -> Position:
        return Position(
            shown=frozenset(char), reads={typed: folded(typed) for typed in TYPABLE if folded(typed) == folded(char)}
        )

    alphabet = "".join(folded(char) for char in fmt.alphabet)
    letter = body_position(fmt.alphabet, alphabet)
    positions = [affix_position(char) for char in compact(fmt.prefix)]
    positions += [letter] * fmt.length
    scheme = fmt.scheme
    if scheme is not None:
        positions.append(body_position(scheme.symbols(fmt.alphabet), scheme.symbols(alphabet), check=True))
    positions += [affix_position(char) for char in compact(fmt.postfix)]
    return tuple(positions)
