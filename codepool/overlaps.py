"""Pools that could issue the same code under two keys: refused when the pools file loads (invariant 1).

A code's key is its `canonical` form, and uniqueness rests on the claim's conditional put of that key alone. Two
pools that read a text to the same key share it, so the put keeps them apart whatever their formats. Two pools
that read one text to *different* keys do not: a case-insensitive pool keys `ab` as `AB`, a case-sensitive one
as `ab`, and a pool whose alphabet has `8` but no `B` reads a typed `B` as `8`. Both could then issue that text
(or one issue it and the other a look-alike), and a look-up could not tell which code was meant. So a pools
file in which one pool shows a text that another pool would read to a different key is refused, naming both
pools and such a text.

The comparison works position by position on the texts without separators (`CodeFormat.positions`): it is
exact for prefixes, postfixes, alphabets, case rules and look-alike characters, and conservative for a check
character (a reader's check position counts as reading differently unless both pools compute the same check
over the same characters) and for blocklists (ignored: a blocked text still counts as shown).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

from codepool.errors import ConfigError

if TYPE_CHECKING:
    from codepool.config import PoolConfig
    from codepool.formats import CodeFormat


@dataclass(frozen=True, slots=True)
class Misreading:
    """A text the `issuer` pool shows (e.g. `ab`) that the `reader` pool reads to another key (`AB`)."""

    issuer: str
    reader: str
    text: str
    issuer_key: str
    reader_key: str | None
    """None when the reader's check character decides whether it accepts the text at all."""

    def describe(self) -> str:
        if self.reader_key is None:
            read_as = "as its own code or as a typo, depending on its check character"
        else:
            read_as = f"as {self.reader_key!r}"
        return (
            f"pools {self.issuer!r} and {self.reader!r} can issue the same code under two keys: {self.issuer!r} "
            f"shows {self.text!r} (its key {self.issuer_key!r}), which {self.reader!r} reads {read_as} (case or "
            "look-alike characters); give one of them a prefix the other cannot read, another length, or the "
            "same alphabet and case rules"
        )


def find_misreading(issuer: PoolConfig, reader: PoolConfig) -> Misreading | None:
    """A text `issuer` may show that `reader` accepts and reads to a key other than `issuer`'s, or None."""
    shown, read = issuer.format.positions(), reader.format.positions()
    if len(shown) != len(read):
        return None
    same_check = _same_check(issuer.format, reader.format)
    text, issuer_key, reader_key = [], [], []
    differs = False
    for mine, theirs in zip(shown, read, strict=True):
        common = sorted(char for char in mine.shown if char in theirs.reads)
        if not common:
            return None
        misread = [char for char in common if theirs.reads[char] != mine.reads[char]]
        if theirs.check and not same_check:
            misread = common
        read_alike = [char for char in common if char not in misread]
        char = misread[0] if misread and not differs else (read_alike or common)[0]
        differs = differs or bool(misread)
        text.append(char)
        issuer_key.append(mine.reads[char])
        reader_key.append(theirs.reads[char])
    if not differs:
        return None
    unsure = any(position.check for position in read) and not same_check
    return Misreading(
        issuer=issuer.name,
        reader=reader.name,
        text="".join(text),
        issuer_key="".join(issuer_key),
        reader_key=None if unsure else "".join(reader_key),
    )


def refuse_misread_pools(pools: Mapping[str, PoolConfig], source: str) -> None:
    """Raise `ConfigError` for the first pair of pools that could issue one code under two keys."""
    for first, second in combinations(pools.values(), 2):
        found = find_misreading(first, second) or find_misreading(second, first)
        if found is not None:
            raise ConfigError(f"{source}: {found.describe()}")


def _same_check(issuer: CodeFormat, reader: CodeFormat) -> bool:
    """Whether `reader` computes its check character over the same characters, the same way, as `issuer`."""
    return (
        issuer.check == reader.check
        and issuer.case_sensitive == reader.case_sensitive
        and issuer.canonical(issuer.alphabet) == reader.canonical(reader.alphabet)
        and len(issuer.canonical(issuer.prefix)) == len(reader.canonical(reader.prefix))
    )
