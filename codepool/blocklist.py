"""Offensive words that a generated code must not spell, in any leet or look-alike form.

A code is blocked when its *folded* form contains a folded blocked word. Folding maps every look-alike of a letter
to one canonical letter, so a single substring search catches "ASS", "A55", "@$5" and "a-5-s" at once:

    A <- 4 @          G <- 6 9               S <- 5 $
    B <- 8            I <- L 1 ! |           T <- 7 +
    E <- 3            O <- 0                 Z <- 2

I, L and 1 form one class, rather than 1 -> I plus 1 -> L, because each is misread as either other: one class keeps
the check a single substring search (and is why the stored words read "SIUT", "ANAI"). Folding also upper-cases and
drops the group separators (space, tab, `-`, `_`, `.`), so a display form (prefix, separators) is checked as a reader
runs it together. Other characters stay as they are.

The default list is LDNOOBW's English list (see data/BLOCKLIST-SOURCE.md), stored already folded and reduced to
the words no other listed word is part of: substring matching makes the longer ones redundant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import TypeAlias

DEFAULT_LIST_SOURCE = (
    "LDNOOBW English list, npm naughty-words 1.2.0 (Shutterstock), CC-BY-4.0; folded and reduced by unique-codes"
)
"""What the default list is, on one line: for the README and `GET /pools`."""

_DATA_FILE = "blocklist-en.txt"
_SEPARATORS = " \t-_."
_LOOKALIKES = {"A": "4@", "B": "8", "E": "3", "G": "69", "I": "L1!|", "O": "0", "S": "5$", "T": "7+", "Z": "2"}
_FOLD = str.maketrans(
    {member: canonical for canonical, members in _LOOKALIKES.items() for member in members} | dict.fromkeys(_SEPARATORS)
)
_Trie: TypeAlias = dict[str, "_Trie"]
"""Next character -> subtrie; the key "" marks the end of a word."""


def fold(text: str) -> str:
    """`text` upper-cased, without separators, each look-alike replaced by its class's canonical letter."""
    # Upper-case first: the table then needs only upper-case keys (`l` becomes `L`, which folds to `I`).
    return text.upper().translate(_FOLD)


@functools.cache
def default_words() -> tuple[str, ...]:
    """The default list, folded. Read on first use, not at import, so importing this module costs no I/O."""
    text = (resources.files("codepool") / "data" / _DATA_FILE).read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line)


@functools.cache
def _pattern(words: frozenset[str]) -> re.Pattern[str] | None:
    """One regex finding any of the folded `words`, shared by every blocklist with the same words.

    Built as a trie (`A(?:NUS|SS)|B(?:...)`), not a flat alternation: `re` tries a flat alternation's branches one by
    one at every position, a trie needs about one test per character. A word that extends another is left out, as a
    match of it would contain the shorter one anyway.
    """
    if not words:
        return None
    trie: _Trie = {}
    for word in sorted(words):  # in order, a word comes before those it is a prefix of, and children stay sorted
        node = trie
        for char in word:
            if "" in node:
                break  # a shorter word is a prefix of this one
            node = node.setdefault(char, {})
        else:
            node[""] = {}
    return re.compile(_trie_regex(trie))


def _trie_regex(node: _Trie) -> str:
    branches = [re.escape(char) + _trie_regex(child) for char, child in node.items() if char]
    if len(branches) <= 1:
        return "".join(branches)
    return "(?:" + "|".join(branches) + ")"


@dataclass(frozen=True, init=False)
class Blocklist:
    """A pool's blocked words plus, unless turned off, the default list. Compares and hashes by those two fields."""

    words: tuple[str, ...]
    """The pool's own words as given, upper-cased, empty ones dropped. Any length: ("A", "B") blocks every A-B code."""
    include_default: bool

    def __init__(self, words: Iterable[str] = (), *, include_default: bool = True) -> None:
        object.__setattr__(self, "words", tuple(word.upper() for word in words if word))
        object.__setattr__(self, "include_default", include_default)

    @functools.cached_property
    def _regex(self) -> re.Pattern[str] | None:
        # Compiled on the first check rather than at construction, and cached on the instance: cached_property
        # writes the instance's __dict__ directly, past the frozen dataclass's __setattr__ and outside eq/hash.
        folded = {word for word in map(fold, self.words) if word}  # a word of separators only blocks nothing
        if self.include_default:
            folded.update(default_words())
        return _pattern(frozenset(folded))

    def blocks(self, code: str) -> bool:
        """Whether `code`, in any form (display form with prefix and separators too), spells a blocked word."""
        regex = self._regex
        return regex is not None and regex.search(fold(code)) is not None

    def blocked_word(self, code: str) -> tuple[str, str] | None:
        """The first blocked word `code` spells, as `(word, spelling)`: the word folded, as the list holds it
        ("ASS", "SIUT"), and the characters of `code` that spell it ("A55", "s-l-u-t"); None if none is there."""
        regex = self._regex
        if regex is None:
            return None
        # Fold character by character (what `fold` does to the whole text), remembering where each folded
        # character came from, to point back into `code`.
        folded, origins = [], []
        for position, char in enumerate(code):
            for folded_char in fold(char):
                folded.append(folded_char)
                origins.append(position)
        match = regex.search("".join(folded))
        if match is None:
            return None
        return match.group(), code[origins[match.start()] : origins[match.end() - 1] + 1]

    def __bool__(self) -> bool:
        """False when there is nothing to block, so `if blocklist:` can skip checking altogether."""
        return self.include_default or any(map(fold, self.words))
