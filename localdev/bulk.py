"""Bulk issue for print runs: `unique-codes issue --pool P --count N --out FILE`.

A bulk run claims its codes in chunks of 25 (one transaction each, `codepool.issuing.issue_codes`), several in
flight, and appends them to a CSV file in chunk order. It is exactly-once across crashes because chunk i is
always claimed with the idempotency key `bulk:<run id>:<i>`, and the run id lives in a state file next to FILE
(`FILE.state.json`): running the same command again re-sends every chunk the file does not hold yet, with the
same keys, and DynamoDB answers a chunk that was claimed before with the codes it claimed then. So the file is
always whole chunks in order (a torn trailing chunk is cut off on resume), every code claimed for the run is in
the file or comes back on the next resume, and none is issued twice.

That lasts as long as the idempotency records do (24 h from each claim): a run older than that less a margin is
not resumed, since a replay could then claim new codes while the ones claimed first were never written. And it
holds only against the table the run issued from: the state file names the table, but a table of that name may
be another one (an in-memory engine restarted, another endpoint). So before trusting the state file, a resume
reads the records of a sample of the codes FILE holds, and refuses unless each is there as the file says.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import fcntl
import io
import json
import math
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from codepool.backoff import full_jitter
from codepool.components import Components
from codepool.config import PoolConfig, Settings, load_pools
from codepool.deadline import Deadline
from codepool.errors import (
    InvalidRequestError,
    PoolEmptyError,
    StoreAccessError,
    UnavailableError,
    UniqueCodesError,
)
from codepool.issuing import IDEMPOTENCY_TTL_SECONDS, issue_codes, validate_issue_request
from codepool.model import MAX_COUNT, IssuedCode, IssueRequest, utc_timestamp
from codepool.refilling import refill_pool
from codepool.repository import CodeRepository
from codepool.runtime import Container

CHUNK_SIZE = MAX_COUNT
"""Codes per chunk: the most one transaction claims. Part of a run's state, since it decides the chunks' keys."""
MAX_BULK_COUNT = 10_000_000
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 64
LOOKAHEAD_PER_SLOT = 4
"""Chunks that may be claimed ahead of the next one to write, per slot of concurrency: a slow chunk (backing
off) holds back at most this many finished ones in memory, not the rest of the run."""
RESUME_MARGIN_SECONDS = 3600
MAX_RESUME_AGE_SECONDS = IDEMPOTENCY_TTL_SECONDS - RESUME_MARGIN_SECONDS
"""A run is resumed only this long after it was created. A chunk's key expires 24 h after its claim, and a chunk
claimed in the first minute may be the one the crash left unwritten, so the run's creation time is what counts;
the margin covers the clocks of this machine and DynamoDB and a resume that itself takes a while."""
REFILL_BOUND = 50_000
"""Most codes one refill adds beyond the pool's target when a run empties the pool (about 13 s of refill on
DynamoDB Local): enough that a large run refills rarely, not so many that a small run overfills the pool."""
MAX_STORE_ATTEMPTS = 6
"""Attempts per chunk while DynamoDB is in trouble (each with its own request budget) before the run stops."""
STORE_BACKOFF_BASE_SECONDS = 0.25
STORE_BACKOFF_CAP_SECONDS = 8.0
MAX_EMPTY_POOL_REFILLS = 5
"""Refills one chunk may wait for and still find the pool empty before the run stops (a keyspace running out)."""
SAMPLED_ROWS = 16
"""Codes of FILE (the first, the last and some spread between) whose records a resume reads before trusting the
state file: one BatchGetItem. A table that is not the run's holds none of them, with the same issuedAt."""
STATE_VERSION = 1
HEADER = b"code,pool,issuedAt\n"
EXIT_STOPPED = 1
EXIT_INTERRUPTED = 130


class BulkRunError(UniqueCodesError):
    """A bulk run refused to start or resume (exit 2): the message says what to do instead."""

    code = "bulk_run_refused"


@dataclass(frozen=True, slots=True)
class BulkOptions:
    out: Path
    pool: str
    count: int
    used_by: str | None = None
    reference: str | None = None
    description: str | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    refill: bool = True
    quiet: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> BulkOptions:
        if args.idempotency_key is not None:
            raise InvalidRequestError(
                "--idempotency-key does not go with --out: a bulk run keys each chunk itself "
                "(bulk:<run id>:<chunk>, the run id kept in FILE.state.json)"
            )
        return cls(
            out=Path(args.out),
            pool=args.pool,
            count=args.count,
            used_by=args.used_by,
            reference=args.reference,
            description=args.description,
            concurrency=DEFAULT_CONCURRENCY if args.concurrency is None else args.concurrency,
            refill=not args.no_refill,
            quiet=args.quiet,
        )

    def request(self, count: int) -> IssueRequest:
        return IssueRequest(
            pool=self.pool,
            count=count,
            used_by=self.used_by,
            reference=self.reference,
            description=self.description,
        )

    def validate(self) -> None:
        if not 1 <= self.count <= MAX_BULK_COUNT:
            raise InvalidRequestError(f"--count must be between 1 and {MAX_BULK_COUNT:,} with --out, got {self.count}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise InvalidRequestError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, got {self.concurrency}")
        folder = self.out.parent
        if not folder.is_dir():
            raise InvalidRequestError(f"--out {str(self.out)!r}: the folder {str(folder)!r} does not exist")
        if self.out.is_dir():
            raise InvalidRequestError(f"--out {str(self.out)!r} is a folder; name a file")


def check_single_issue(args: argparse.Namespace) -> None:
    """Without `--out`, `issue` answers one request as before; the bulk flags would be silently ignored there."""
    for flag, given in (
        ("--concurrency", args.concurrency is not None),
        ("--no-refill", args.no_refill),
        ("--quiet", args.quiet),
    ):
        if given:
            raise InvalidRequestError(f"{flag} only goes with --out FILE (a bulk run)")
    if not 1 <= args.count <= MAX_COUNT:
        raise InvalidRequestError(
            f"count must be between 1 and {MAX_COUNT}, got {args.count}; for more, write them to a file: --out FILE"
        )


# -- the run's state, next to FILE --------------------------------------------------------------------------------


@dataclass(slots=True)
class RunState:
    """What makes a re-run the same run: its id (the chunks' keys) and the request it stands for."""

    run_id: str
    pool: str
    count: int
    metadata: dict[str, str]
    table: str
    created_at: float
    chunk_size: int = CHUNK_SIZE
    done: bool = False

    @property
    def chunks(self) -> int:
        return math.ceil(self.count / self.chunk_size)

    def chunk_count(self, chunk: int) -> int:
        return min(self.chunk_size, self.count - chunk * self.chunk_size)

    def key(self, chunk: int) -> str:
        return f"bulk:{self.run_id}:{chunk}"

    def resumable_until(self) -> float:
        return self.created_at + MAX_RESUME_AGE_SECONDS

    def describe(self) -> str:
        return _describe(self.pool, self.count, self.metadata, self.table)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "runId": self.run_id,
            "pool": self.pool,
            "count": self.count,
            "chunkSize": self.chunk_size,
            "metadata": self.metadata,
            "table": self.table,
            "createdAt": utc_timestamp(self.created_at),
            "done": self.done,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RunState:
        if body.get("version") != STATE_VERSION:
            raise ValueError(f"unknown version {body.get('version')!r}")
        return cls(
            run_id=str(uuid.UUID(body["runId"])),
            pool=str(body["pool"]),
            count=int(body["count"]),
            metadata={str(k): str(v) for k, v in dict(body["metadata"]).items()},
            table=str(body["table"]),
            created_at=datetime.fromisoformat(body["createdAt"]).timestamp(),
            chunk_size=int(body["chunkSize"]),
            done=bool(body["done"]),
        )


def _describe(pool: str, count: int, metadata: dict[str, str], table: str) -> str:
    extra = "".join(f", {name} {value!r}" for name, value in sorted(metadata.items()))
    return f"pool {pool!r}, count {count}{extra}, table {table!r}"


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state.json")


def load_state(path: Path) -> RunState | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return RunState.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BulkRunError(
            f"{path} is not a bulk run's state ({exc}); move it away, or pick another --out file"
        ) from None


def save_state(path: Path, state: RunState) -> None:
    """Write-then-rename, synced: a crash leaves the old state or the new one, never half of either."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as file:
        json.dump(state.to_json(), file, indent=2)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- FILE: a CSV of whole chunks, in chunk order ------------------------------------------------------------------


class CodeFile:
    """FILE, held open and locked (`flock`) for the whole run, so two runs never append the same chunks."""

    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path = path
        self._file = file

    @classmethod
    @contextmanager
    def open(cls, path: Path) -> Iterator[CodeFile]:
        """Created if missing; removed again if the run is refused before writing anything to it."""
        existed = path.exists()
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(descriptor, "r+b") as file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BulkRunError(f"another unique-codes issue is writing {path}; wait for it to end") from None
            opened = cls(path, file)
            try:
                yield opened
            except BulkRunError:
                if not existed and opened.size() == 0:
                    path.unlink(missing_ok=True)
                raise

    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def start(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        self._file.write(HEADER)
        self.sync()

    def read_back(self, state: RunState) -> HeldRows:
        """The whole chunks the file holds (nothing is changed yet: `keep` cuts off what follows them). A file
        without even its header (a crash right after the state was saved) starts over."""
        self._file.seek(0)
        first = self._file.readline()
        if first != HEADER:
            if not HEADER.startswith(first):
                raise BulkRunError(f"{self.path} does not start with the header {HEADER.decode().strip()!r}")
            self.start()
            return HeldRows(0, len(HEADER), [])
        return self._whole_chunks(state, len(first))

    def keep(self, held: HeldRows) -> None:
        """Cut off anything after the whole chunks (a write the crash tore)."""
        if self.size() > held.offset:
            self._file.truncate(held.offset)
            self.sync()

    def _whole_chunks(self, state: RunState, offset: int) -> HeldRows:
        rows = kept = 0
        kept_offset = offset
        wanted = {round(i * (state.count - 1) / (SAMPLED_ROWS - 1)) for i in range(SAMPLED_ROWS)}
        sampled: list[tuple[int, list[str]]] = []
        last: list[str] = []
        for line in self._file:
            if not line.endswith(b"\n"):
                break
            fields = _check_row(self.path, line, rows + 2, state.pool)
            if rows in wanted:
                sampled.append((rows, fields))
            rows += 1
            offset += len(line)
            if rows % state.chunk_size == 0 or rows == state.count:
                kept, kept_offset, last = rows, offset, fields
            if rows == state.count:
                break
        if rows == state.count and self._file.read(1):
            raise BulkRunError(f"{self.path} holds more than the run's {state.count} codes")
        sample = [fields for row, fields in sampled if row < kept]
        if last and last not in sample:
            sample.append(last)
        return HeldRows(kept, kept_offset, sample)

    def append(self, codes: list[IssuedCode]) -> None:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows((c.code, c.pool, c.issued_at) for c in codes)
        self._file.seek(0, os.SEEK_END)
        self._file.write(buffer.getvalue().encode("utf-8"))

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())


@dataclass(frozen=True, slots=True)
class HeldRows:
    """What FILE holds of a run: its whole chunks' rows, where they end, and a sample of them (code, pool,
    issuedAt), to check against the table's records."""

    rows: int
    offset: int
    sample: list[list[str]]


def _check_row(path: Path, line: bytes, number: int, pool: str) -> list[str]:
    try:
        fields = next(csv.reader([line.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        fields = []
    if len(fields) != 3 or fields[1] != pool:
        raise BulkRunError(f"{path} line {number} is not a code of pool {pool!r}: the file was edited")
    return fields


# -- planning: a new run, or where an old one stopped ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    state: RunState
    resumed: bool
    first_chunk: int
    """The first chunk FILE does not hold: the run (re)starts there."""
    already_written: int

    @property
    def finished(self) -> bool:
        return self.first_chunk >= self.state.chunks


async def plan_run(
    options: BulkOptions, pool: PoolConfig, repository: CodeRepository, table: str, file: CodeFile, now: float
) -> Plan:
    """A new run (state saved before any claim, so every claim has its key on disk), or the old one resumed once
    the table is known to hold the codes FILE holds."""
    path = state_path(options.out)
    state = load_state(path)
    metadata = options.request(1).metadata()
    if state is None:
        if file.size() > 0:
            raise BulkRunError(
                f"{options.out} already exists and no bulk run state ({path.name}) is next to it: "
                "pick another --out file, or delete it"
            )
        state = RunState(str(uuid.uuid4()), options.pool, options.count, metadata, table, now)
        save_state(path, state)
        file.start()
        return Plan(state, resumed=False, first_chunk=0, already_written=0)
    asked = _describe(options.pool, options.count, metadata, table)
    if asked != state.describe() or state.chunk_size != CHUNK_SIZE:
        raise BulkRunError(
            f"{options.out} belongs to another bulk run ({state.describe()}), not this one ({asked}): "
            f"pick another --out file, or delete {options.out} and {path.name} to start afresh"
        )
    held = file.read_back(state)
    rows = held.rows
    first = state.chunks if rows == state.count else rows // state.chunk_size
    plan = Plan(state, resumed=True, first_chunk=first, already_written=rows)
    if not plan.finished and now > state.resumable_until():
        raise BulkRunError(_too_old(options.out, path, state, rows, now))
    await _check_the_table_holds(options.out, path, pool, repository, state, held)
    file.keep(held)
    return plan


async def _check_the_table_holds(
    out: Path, path: Path, pool: PoolConfig, repository: CodeRepository, state: RunState, held: HeldRows
) -> None:
    """Refuse, changing nothing, unless the table records each sampled code of FILE as FILE has it (same pool,
    same issuedAt): a table of the run's name that is not the run's table would otherwise be trusted, and a
    resume would add its codes to a file of another table's, or a finished run say "nothing issued"."""
    keys = {pool.format.canonical(code): (code, issued_at) for code, _, issued_at in held.sample}
    if not keys:
        return
    records = await repository.find_issued(list(keys))
    missing = [
        code
        for key, (code, issued_at) in keys.items()
        if (record := records.get(key)) is None
        or (record.code, record.pool, record.issued_at) != (code, state.pool, issued_at)
    ]
    if missing:
        raise BulkRunError(
            f"{out} holds {held.rows} codes of a bulk run issued from table {state.table!r}, but this table has "
            f"no record of {len(missing)} of the {len(keys)} checked (such as {missing[0]!r}): it is not the table "
            "the run issued them from (an in-memory engine restarted? another --endpoint-url?). Nothing was issued "
            f"and {out} is unchanged. Point --endpoint-url and --table at the run's table to resume it; to issue "
            f"into this table instead, move {out} and {path.name} away and run the command again"
        )


def _too_old(out: Path, path: Path, state: RunState, rows: int, now: float) -> str:
    hours = (now - state.created_at) / 3600
    return (
        f"{out}: this bulk run started {hours:.1f} h ago ({utc_timestamp(state.created_at)}) and is no longer "
        f"resumed: its chunks' idempotency keys last {IDEMPOTENCY_TTL_SECONDS // 3600} h from their claim, so a "
        f"resume could issue new codes for a chunk whose first codes were claimed but never written. The {rows} "
        f"codes in {out} are issued and valid; move {out} and {path.name} away and issue the other "
        f"{state.count - rows} into a new file"
    )


# -- the run -----------------------------------------------------------------------------------------------------


class Interrupts:
    """Ctrl-C during a bulk run: the first stops starting chunks, the second cancels those in flight."""

    def __init__(self) -> None:
        self.count = 0
        self.on_second: Callable[[], None] | None = None

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            print("stopping: finishing the chunks in flight (Ctrl-C again to cancel them)", file=sys.stderr)
        elif self.on_second is not None:
            self.on_second()


@contextmanager
def handling_interrupts(interrupts: Interrupts) -> Iterator[None]:
    """SIGINT calls `interrupts` instead of raising KeyboardInterrupt wherever the loop happens to be, so the run
    can write what it has. Where the loop cannot take signal handlers, Ctrl-C cancels the run (also written)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, interrupts)
    except (NotImplementedError, RuntimeError, ValueError):
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@dataclass(slots=True)
class Tally:
    written: int = 0
    replayed: int = 0
    """Codes that came back from an earlier attempt's claim (their key's record), not newly issued."""
    refills: int = 0


@dataclass(slots=True)
class BulkRun:
    """Claims chunks `plan.first_chunk`.. with `concurrency` in flight and writes them in order as they complete.

    Each slot of concurrency has a prefetcher of its own (`Components.over` the one container's repository): one
    prefetcher is built for one request at a time, as in a Lambda container, and concurrent takes from it could
    hand the same candidate twice to one transaction. Between slots, sharing a candidate is a lost race, which
    the claim's conditions settle.
    """

    container: Container
    pool: PoolConfig
    plan: Plan
    options: BulkOptions
    file: CodeFile
    interrupts: Interrupts
    on_written: Callable[[int], None]
    tally: Tally = field(default_factory=Tally)
    failure: BaseException | None = None
    next_write: int = 0
    _tasks: dict[asyncio.Task[list[IssuedCode]], int] = field(default_factory=dict)
    _ready: dict[int, list[IssuedCode]] = field(default_factory=dict)
    _slots: asyncio.Queue[Components] = field(default_factory=asyncio.Queue)
    _refill_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _refill_generation: int = 0
    _claimed: int = 0

    def __post_init__(self) -> None:
        self.next_write = self.plan.first_chunk
        self._claimed = self.plan.already_written
        for _ in range(self.options.concurrency):
            self._slots.put_nowait(Components.over(self.container.repository, self.container.pools))
        self.interrupts.on_second = self._cancel_in_flight

    @property
    def complete(self) -> bool:
        return self.next_write >= self.plan.state.chunks

    @property
    def stopping(self) -> bool:
        return self.failure is not None or self.interrupts.count > 0

    async def run(self) -> None:
        next_chunk = self.plan.first_chunk
        try:
            while True:
                next_chunk = self._start_chunks(next_chunk)
                if not self._tasks:
                    return
                done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                self._collect(done)
                self._write_ready()
        finally:
            # Cancelled from outside: the claims in flight end too, and whatever completed is still written.
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._collect(set(tasks))
            self._write_ready()

    def _start_chunks(self, next_chunk: int) -> int:
        window = self.next_write + LOOKAHEAD_PER_SLOT * self.options.concurrency
        while (
            not self.stopping
            and next_chunk < self.plan.state.chunks
            and len(self._tasks) < self.options.concurrency
            and next_chunk < window
        ):
            self._tasks[asyncio.create_task(self._claim(next_chunk))] = next_chunk
            next_chunk += 1
        return next_chunk

    def _collect(self, done: set[asyncio.Task[list[IssuedCode]]]) -> None:
        for task in done:
            chunk = self._tasks.pop(task)
            if task.cancelled():
                continue
            error = task.exception()
            if error is None:
                self._ready[chunk] = task.result()
            elif self.failure is None:
                self.failure = error

    def _write_ready(self) -> None:
        """Append the chunks that now continue the file, then sync once: the file stays a prefix of whole chunks
        (a crash mid-write leaves a torn tail, which the next resume cuts off and claims again with its key)."""
        written = 0
        while self.next_write in self._ready:
            codes = self._ready.pop(self.next_write)
            self.file.append(codes)
            self.next_write += 1
            written += len(codes)
        if written:
            self.file.sync()
            self.tally.written += written
            self.on_written(written)

    def _cancel_in_flight(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _claim(self, chunk: int) -> list[IssuedCode]:
        components = await self._slots.get()
        try:
            return await self._claim_with(components, chunk)
        finally:
            self._slots.put_nowait(components)

    async def _claim_with(self, components: Components, chunk: int) -> list[IssuedCode]:
        """One chunk, always with its key: after an empty pool (refilled) or store trouble (backed off), the retry
        either claims the chunk for the first time or gets back the codes an earlier attempt claimed."""
        state = self.plan.state
        request = self.options.request(state.chunk_count(chunk))
        troubles = empties = 0
        while True:
            generation = self._refill_generation
            try:
                result = await issue_codes(
                    components,
                    request,
                    idempotency_key=state.key(chunk),
                    deadline=Deadline.after(self.container.settings.request_budget),
                )
            except PoolEmptyError:
                empties += 1
                if not self.options.refill or empties > MAX_EMPTY_POOL_REFILLS:
                    raise
                await self._refill(generation)
            except StoreAccessError:
                raise  # credentials or permissions: waiting does not help
            except UnavailableError as trouble:
                troubles += 1
                if troubles >= MAX_STORE_ATTEMPTS:
                    raise
                await asyncio.sleep(_pause(troubles, trouble))
            else:
                self._claimed += len(result.codes)
                if result.replayed:
                    self.tally.replayed += len(result.codes)
                return result.codes

    async def _refill(self, generation: int) -> None:
        """Top the pool up, once for all the chunks that found it empty together: a chunk that waited for the lock
        while another refilled just tries again."""
        async with self._refill_lock:
            if generation != self._refill_generation:
                return
            remaining = self.plan.state.count - self._claimed
            target = max(self.pool.target, min(remaining, REFILL_BOUND))
            await refill_pool(self.container.repository, self.pool, target)
            self._refill_generation += 1
            self.tally.refills += 1


def _pause(attempt: int, trouble: UnavailableError) -> float:
    """Full jitter, at least a fraction of what DynamoDB's trouble suggests, capped so a run does not stall long."""
    jitter = full_jitter(attempt, STORE_BACKOFF_BASE_SECONDS, STORE_BACKOFF_CAP_SECONDS)
    return min(STORE_BACKOFF_CAP_SECONDS, max(jitter, trouble.retry_after / 4))


# -- the command ---------------------------------------------------------------------------------------------------


async def issue_to_file(options: BulkOptions, settings: Settings) -> int:
    """`issue --out FILE`: 0 when FILE holds all the run's codes, 1 when it stopped on trouble, 130 on Ctrl-C (both
    resumable by the same command); invalid input or a refused resume is a `UniqueCodesError` (exit 2)."""
    started = time.perf_counter()
    options.validate()
    pools = load_pools(settings.pools_file)
    pool = validate_issue_request(options.request(min(options.count, CHUNK_SIZE)), pools, None)
    interrupts = Interrupts()
    with handling_interrupts(interrupts), CodeFile.open(options.out) as file:
        async with Container.open(settings, pools) as container:
            plan = await plan_run(options, pool, container.repository, settings.table_name, file, time.time())
            if plan.finished:
                print(
                    f"{options.out} already holds all {plan.state.count} codes of this run; nothing issued",
                    file=sys.stderr,
                )
                _finish(options, plan, Tally(), started)
                return 0
            with _progress(options, plan) as advance:
                run = BulkRun(container, pool, plan, options, file, interrupts, advance)
                await run.run()
    return _outcome(options, run, started)


def _outcome(options: BulkOptions, run: BulkRun, started: float) -> int:
    if run.complete:
        _finish(options, run.plan, run.tally, started)
        return 0
    if run.failure is not None and not isinstance(run.failure, UniqueCodesError):
        raise run.failure  # a bug: FILE and its state are consistent, the traceback says the rest
    state = run.plan.state
    held = min(state.count, run.next_write * state.chunk_size)
    resume = (
        f"{options.out} holds {held} of {state.count} codes; run the same command again to resume "
        f"(before {utc_timestamp(state.resumable_until())})"
    )
    if run.interrupts.count:
        print(f"unique-codes issue: interrupted: {resume}", file=sys.stderr)
        return EXIT_INTERRUPTED
    hint = ""
    if isinstance(run.failure, PoolEmptyError) and not options.refill:
        hint = f" (--no-refill: top it up first, e.g. unique-codes refill --pool {state.pool})"
    print(f"unique-codes issue: stopped: {run.failure}{hint}; {resume}", file=sys.stderr)
    return EXIT_STOPPED


def _finish(options: BulkOptions, plan: Plan, tally: Tally, started: float) -> None:
    """Mark the state done (a re-run then issues nothing) and print the summary."""
    state = plan.state
    if not state.done:
        state.done = True
        save_state(state_path(options.out), state)
    seconds = time.perf_counter() - started
    summary = {
        "out": str(options.out),
        "pool": state.pool,
        "count": state.count,
        "written": tally.written,
        "resumed": plan.resumed,
        "alreadyWritten": plan.already_written,
        "replayed": tally.replayed,
        "refills": tally.refills,
        "seconds": round(seconds, 3),
        "codesPerSecond": round(tally.written / seconds, 1) if seconds > 0 else 0.0,
    }
    print(json.dumps(summary, indent=2))


@contextmanager
def _progress(options: BulkOptions, plan: Plan) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (stdout carries only the summary), off when stderr is not a terminal or --quiet."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    disabled = options.quiet or not sys.stderr.isatty()
    with Progress(*columns, console=Console(stderr=True), disable=disabled) as progress:
        task = progress.add_task(
            f"issue {plan.state.pool} -> {options.out.name}", total=plan.state.count, completed=plan.already_written
        )
        yield lambda written: progress.advance(task, written)
