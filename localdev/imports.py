"""`unique-codes import POOL FILE`: read a list of codes (one per line, or a CSV column) and import it.

The file is streamed (its lines are numbered as an editor shows them), a progress bar follows the bytes read, and
the summary (imported, already there, duplicates and invalid lines, each with its line number and reason) is
printed as JSON.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codepool.config import Settings, load_pools, resolve_pool
from codepool.errors import ConfigError
from codepool.importing import ImportSummary, import_codes
from codepool.runtime import Container

EXIT_INVALID_LINES = 1
"""Exit status when some lines were not codes of the pool: the valid ones were imported, the rest need a look."""


def add_parser(commands: Any, engine_options: Any, pool_options: Any) -> None:
    parser = commands.add_parser(
        "import",
        help="load existing codes (one per line, or a CSV column) into a pool",
        description="Import codes into POOL: each line is the code as printed, validated against the pool's "
        "format (check character included); separators are ignored and case is folded where the alphabet has one "
        "case, nothing else is rewritten (a character outside the alphabet is an invalid line). Duplicates within "
        "the file and codes already issued or pooled are reported, not written; each line not imported is "
        "listed (the first 100 of each kind) with its number and reason. Running the same file again imports "
        "nothing new. Exit status 1 if some lines were invalid.",
    )
    parser.add_argument("pool", help="the pool (its format in the pools file; `imported_only = true` for list pools)")
    parser.add_argument("file", help="a text file with one code per line ('#' comments, blank lines skipped), or CSV")
    parser.add_argument(
        "--column",
        help="read CSV: the column's header name, or its 1-based number (then with --header the first row is "
        "skipped); default for *.csv files: column 1 with a header",
    )
    parser.add_argument("--header", action="store_true", help="with a numbered --column: skip the first row")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    engine_options(parser)
    pool_options(parser)


def read_entries(path: Path, column: str | None, header: bool) -> Iterator[tuple[int, str]]:
    """(line number, text) for each code in the file; blank lines and '#' comments are skipped."""
    with path.open(encoding="utf-8-sig", newline="") as file:
        if column is None and path.suffix.lower() != ".csv":
            for number, line in enumerate(file, start=1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield number, text
            return
        yield from _csv_entries(file, column or "1", header or column is None)


def _csv_entries(file: io.TextIOBase, column: str, header: bool) -> Iterator[tuple[int, str]]:
    rows = csv.reader(file)
    index: int
    if column.isdigit():
        index = int(column) - 1
        if index < 0:
            raise ConfigError("--column numbers start at 1")
        if header:
            next(rows, None)
    else:
        names = next(rows, None) or []
        if column not in names:
            raise ConfigError(f"no column {column!r} in the CSV header {names}")
        index = names.index(column)
    for row in rows:
        number = rows.line_num
        text = row[index].strip() if index < len(row) else ""
        if text and not text.startswith("#"):
            yield number, text


async def import_command(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    path, lines = _input_file(args.file)
    pools = load_pools(settings.pools_file)
    pool = resolve_pool(pools, args.pool)
    columns = (TextColumn("import {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    entries = read_entries(path, args.column, args.header)
    try:
        async with Container.open(settings, pools) as container:
            with Progress(
                *columns, disable=args.quiet or not sys.stderr.isatty(), console=Console(stderr=True)
            ) as progress:
                task = progress.add_task(pool.name, total=lines)

                def report(summary: ImportSummary) -> None:
                    progress.update(task, completed=summary.lines)

                summary = await import_codes(container.repository, pool, entries, on_progress=report)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{args.file!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    print(json.dumps({"file": str(path), **summary.to_json()}, indent=2))
    return EXIT_INVALID_LINES if summary.invalid else 0


def _input_file(name: str) -> tuple[Path, int]:
    """The file and its number of lines (the progress bar's total: a fast pass over its bytes). The file is read
    on the event loop, like any CLI input: nothing else runs on this loop meanwhile."""
    path = Path(name)
    if not path.is_file():
        raise ConfigError(f"{name!r} is not a file")
    with path.open("rb") as file:
        return path, sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
