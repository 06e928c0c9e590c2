"""Import existing codes (printed on cards, bought in, migrated) into a pool: each validated against the pool's
format, duplicates found within the input and against every code issued or pooled, the rest written as slots.

An imported code is what is printed: a line is read strictly, not as a look-up reads typed text. Separators
(spaces, dashes, ...) are ignored and, in a pool whose alphabet has one case, the case is folded; the code is
stored in the pool's display form (`PIN 17 330` as `PIN-17-330`) and the summary counts such lines as
`normalised`. A character outside the pool's alphabet makes the line invalid, even where a look-up would read it
as a look-alike (`1` as `L`): storing that reading would put a code in the pool that is not on the card.

Running the same input again is harmless: its codes are then found in the pool (or issued) and nothing is
written. The pool's ledger counts what was imported (`PoolLedger.imported`), for its statistics.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from codepool.backoff import full_jitter
from codepool.blocklist import Blocklist
from codepool.config import PoolConfig
from codepool.errors import RefillError, StoreUnavailableError
from codepool.formats import PLACEHOLDER, CheckCharacterError, CodeFormat, compact, confusables
from codepool.model import Candidate, shard_of
from codepool.repository import CodeRepository
from codepool.tasks import run_limited

IMPORT_BATCH = 1_000
"""Codes validated before they are checked and written together: bounds memory besides the duplicate index."""
CHECK_CHUNK = 50
"""Codes per existence check: 100 keys (each code's record and its slot), one BatchGetItem."""
WRITE_CHUNK = 25
IN_FLIGHT = 8
"""Requests an import has in flight at most, like a refill (`codepool.refilling.REQUESTS_IN_FLIGHT`)."""
LEDGER_ATTEMPTS = 4
"""Sends of one ledger addition (the same token each time) before an import gives up counting a batch."""
REPORTED_LINES = 100
"""Lines kept (number, text, reason) per kind of line not imported, for the summary (the counts are complete)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    text: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "text": self.text, "reason": self.reason}


@dataclass(slots=True)
class ImportSummary:
    """What happened to each line, counted; of each kind of line not imported, the first `REPORTED_LINES`."""

    pool: str
    lines: int = 0
    imported: int = 0
    already_available: int = 0
    already_issued: int = 0
    duplicates: int = 0
    invalid: int = 0
    normalised: int = 0
    """Valid lines whose text differs from the code's display form (case, separators): stored in display form."""
    duplicate_lines: list[Rejected] = field(default_factory=list)
    invalid_lines: list[Rejected] = field(default_factory=list)
    already_available_lines: list[Rejected] = field(default_factory=list)
    already_issued_lines: list[Rejected] = field(default_factory=list)

    def reject(self, rejected: Rejected, *, duplicate: bool) -> None:
        if duplicate:
            self.duplicates += 1
            _keep(self.duplicate_lines, rejected)
        else:
            self.invalid += 1
            _keep(self.invalid_lines, rejected)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "lines": self.lines,
            "imported": self.imported,
            "alreadyAvailable": self.already_available,
            "alreadyIssued": self.already_issued,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "normalised": self.normalised,
            "duplicateLines": [rejected.to_json() for rejected in self.duplicate_lines],
            "invalidLines": [rejected.to_json() for rejected in self.invalid_lines],
            "alreadyAvailableLines": [rejected.to_json() for rejected in self.already_available_lines],
            "alreadyIssuedLines": [rejected.to_json() for rejected in self.already_issued_lines],
        }


def _keep(kept: list[Rejected], rejected: Rejected) -> None:
    if len(kept) < REPORTED_LINES:
        kept.append(rejected)


@dataclass(frozen=True, slots=True)
class _Line:
    """A valid line on its way to the pool."""

    number: int
    text: str
    candidate: Candidate


class InvalidLineError(ValueError):
    """A line that is not a code of the pool as printed; the message says why, naming the character at fault."""


async def import_codes(
    repository: CodeRepository,
    pool: PoolConfig,
    entries: Iterable[tuple[int, str]],
    on_progress: Callable[[ImportSummary], None] | None = None,
) -> ImportSummary:
    """Import `(line number, text)` entries into `pool`; returns what happened to each line, counted."""
    summary = ImportSummary(pool=pool.name)
    reader = PrintedCodeReader(pool.format)
    first_seen: dict[str, int] = {}
    batch: list[_Line] = []
    for number, text in entries:
        summary.lines += 1
        line = _validate(pool, reader, number, text, first_seen, summary)
        if line is not None:
            batch.append(line)
        if len(batch) >= IMPORT_BATCH:
            await _store(repository, pool, batch, summary)
            batch = []
            if on_progress is not None:
                on_progress(summary)
    if batch:
        await _store(repository, pool, batch, summary)
    if on_progress is not None:
        on_progress(summary)
    return summary


class PrintedCodeReader:
    """Reads a line as the code printed on a card: strictly, each character where the format puts one."""

    def __init__(self, fmt: CodeFormat) -> None:
        self.format = fmt
        # The format's own blocklist, built again to say which word a blocked code spells (`is_blocked` decides).
        self._blocklist = Blocklist(fmt.blocklist, include_default=fmt.default_blocklist)
        self._look_alikes = confusables(fmt.alphabet, fmt.case_sensitive)
        self._alphabet = fmt.alphabet if fmt.case_sensitive else fmt.alphabet.upper()
        layout = fmt.pattern if fmt.pattern is not None else PLACEHOLDER * fmt.body_length
        self._shape = fmt.prefix + layout + fmt.postfix

    def key(self, text: str) -> str:
        """The key of the code `text` spells; `InvalidLineError` naming the first thing wrong with it."""
        fmt = self.format
        characters = [(position, char) for position, char in enumerate(text, start=1) if compact(char)]
        prefix, postfix = fmt.canonical(fmt.prefix), fmt.canonical(fmt.postfix)
        expected = len(prefix) + fmt.body_length + len(postfix)
        if len(characters) != expected:
            raise InvalidLineError(
                f"wrong length: {len(characters)} characters where the pool's codes have {expected} "
                f"(separators not counted; they look like {self._shape!r})"
            )
        body_end = len(characters) - len(postfix)
        self._check_affix(characters[: len(prefix)], prefix, "prefix", fmt.prefix)
        self._check_affix(characters[body_end:], postfix, "postfix", fmt.postfix)
        body = characters[len(prefix) : body_end]
        scheme = fmt.scheme
        letters = body[:-1] if scheme is not None else body
        for position, char in letters:
            if self._fold(char) not in self._alphabet:
                raise InvalidLineError(self._outside_alphabet(position, char))
        if scheme is not None:
            position, char = body[-1]
            if self._fold(char) not in scheme.symbols(self._alphabet):
                raise InvalidLineError(f"character {char!r} at position {position} is not a check character")
            given = "".join(self._fold(letter) for _, letter in letters)
            check = scheme.character(given, self._alphabet)
            if self._fold(char) != check:
                raise InvalidLineError(
                    f"wrong check character {char!r} at position {position}: the characters before it give "
                    f"{check!r} (a typo?)"
                )
        try:
            key = fmt.resolve(text)  # what a look-up makes of it: with every character the alphabet's, the same
        except CheckCharacterError:
            key = None
        if key is None:
            raise InvalidLineError(f"not a code of this pool (its codes look like {self._shape!r})")
        return key

    def blocked(self, code: str) -> str | None:
        """Why the code (display form) may not be imported, if it spells a blocked word."""
        if not self.format.is_blocked(code):
            return None
        found = self._blocklist.blocked_word(code)
        if found is None:
            return "spells a blocked word"
        word, spelling = found
        return f"spells the blocked word {word!r}" + (f" as {spelling!r}" if spelling != word else "")

    def _fold(self, char: str) -> str:
        # ASCII only: the alphabet is ASCII, and some other characters upper-case into it (dotless i, U+0131, to 'I').
        return char.upper() if not self.format.case_sensitive and char.isascii() else char

    def _check_affix(self, characters: list[tuple[int, str]], expected: str, name: str, affix: str) -> None:
        for (position, char), wanted in zip(characters, expected, strict=True):
            if self._fold(char) != wanted:
                raise InvalidLineError(
                    f"character {char!r} at position {position} does not match the pool's {name} {affix!r}"
                )

    def _outside_alphabet(self, position: int, char: str) -> str:
        reason = f"character {char!r} at position {position} is not in the pool's alphabet {self.format.alphabet!r}"
        reading = self._look_alikes.get(self._fold(char))
        if reading is not None:
            reason += f" (a look-up would read it as {reading!r}; an import stores only what is printed)"
        return reason


def _validate(
    pool: PoolConfig,
    reader: PrintedCodeReader,
    number: int,
    text: str,
    first_seen: dict[str, int],
    summary: ImportSummary,
) -> _Line | None:
    try:
        key = reader.key(text)
    except InvalidLineError as invalid:
        summary.reject(Rejected(number, text, str(invalid)), duplicate=False)
        return None
    code = pool.format.display_of(key)
    blocked = reader.blocked(code)
    if blocked is not None:
        summary.reject(Rejected(number, text, blocked), duplicate=False)
        return None
    if key in first_seen:
        summary.reject(Rejected(number, text, f"same code as line {first_seen[key]}"), duplicate=True)
        return None
    first_seen[key] = number
    if code != text:
        summary.normalised += 1
    return _Line(number, text, Candidate(key=key, code=code, shard=shard_of(key, pool.shards)))


async def _store(repository: CodeRepository, pool: PoolConfig, batch: list[_Line], summary: ImportSummary) -> None:
    """Check the batch against issued and pooled codes, write the fresh ones, count them in the ledger."""
    candidates = [line.candidate for line in batch]
    chunks = [candidates[start : start + CHECK_CHUNK] for start in range(0, len(candidates), CHECK_CHUNK)]
    found = await run_limited(
        IN_FLIGHT, (partial(repository.existing_among, pool.name, chunk, check_available=True) for chunk in chunks)
    )
    issued = set().union(*(pair[0] for pair in found))
    available = set().union(*(pair[1] for pair in found)) - issued
    fresh = []
    for line in batch:
        if line.candidate.key in issued:
            summary.already_issued += 1
            _keep(summary.already_issued_lines, Rejected(line.number, line.text, "already issued: not imported again"))
        elif line.candidate.key in available:
            summary.already_available += 1
            reason = f"already in pool {pool.name!r}: not written again"
            _keep(summary.already_available_lines, Rejected(line.number, line.text, reason))
        else:
            fresh.append(line.candidate)
    landed = 0
    failures: list[Exception] = []

    async def write(chunk: list[Candidate]) -> None:
        # After a failure no chunk starts, but those in flight finish: each may land, and what lands is counted.
        nonlocal landed
        if failures:
            return
        try:
            report = await repository.add_available(pool.name, chunk)
        except RefillError as exc:
            landed += exc.written
            failures.append(exc)
            return
        except StoreUnavailableError as exc:
            failures.append(exc)
            return
        landed += report.written

    chunks = [fresh[start : start + WRITE_CHUNK] for start in range(0, len(fresh), WRITE_CHUNK)]
    await run_limited(IN_FLIGHT, (partial(write, chunk) for chunk in chunks))
    # Counted even when a chunk failed: a re-run finds the chunks that landed in the pool and skips them.
    if landed:
        await _count_imported(repository, pool, landed)
    summary.imported += landed
    if failures:
        raise failures[0]


async def _count_imported(repository: CodeRepository, pool: PoolConfig, landed: int) -> None:
    """Add `landed` to the ledger's `imported` once: a retry after a lost answer reuses the token."""
    token = uuid.uuid4().hex
    for attempt in range(LEDGER_ATTEMPTS):
        try:
            await repository.add_to_ledger(pool.name, token, imported=landed)
            return
        except StoreUnavailableError:
            if attempt + 1 == LEDGER_ATTEMPTS:
                raise
            await asyncio.sleep(full_jitter(attempt, 0.1, 2.0))
