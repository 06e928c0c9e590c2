"""The full fault mix, recorded as a history and checked against the table: `python -m tests.reliability.soak`.

    .venv/bin/python -m tests.reliability.soak --minutes 10 --seed 1      # the documented soak (README "Reliability")
    .venv/bin/python -m tests.reliability.soak --minutes 1 --processes 8  # a quick look

What runs, all on this machine:

- AWS DynamoDB Local on a `-dbPath` (in /dev/shm when there is one), behind the seeded fault-injecting proxy of
  `tests.support.fault_proxy`: throttling and capacity errors, cancelled transactions (`ThrottlingError`,
  `TransactionConflict`), HTML 5xx, connection resets before forwarding, delays past the client's read timeout,
  and responses dropped after the write committed;
- claimer processes, each one Lambda container: `issuer.app.lambda_handler` with REST v1 events, with and
  without `Idempotency-Key`, one to three codes a request, on a pool small enough to drain and refill many
  times; an indeterminate answer with a key is retried with the same key;
- two refiller processes calling `refiller.app.lambda_handler` in overlapping loops;
- a killer that `SIGKILL`s a random claimer every few seconds; its replacement first retries the killed
  process's in-flight idempotent request with the same key;
- engine trouble: DynamoDB Local frozen (`SIGSTOP`/`SIGCONT`) and cleanly stopped and restarted on the same
  `-dbPath` and port (not `SIGKILL`, which can lose the emulator's own acknowledged writes);
- at the end, with faults off, one more retry of every indeterminate key; then the table is read directly
  and `tests.reliability.history.check` holds the whole history against it.

Processes come from a fork server that preloads the handlers, so a replacement starts in milliseconds; each
creates its container (event loop, client) on its first invocation, as on Lambda.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from codepool.config import Settings, load_pools, parse_pools
from codepool.dynamodb.client import open_client
from codepool.errors import ConfigError
from codepool.importing import import_codes
from codepool.queries import pool_stats
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal, free_port
from tests.reliability.history import (
    HistoryWriter,
    Operation,
    Report,
    Request,
    check,
    classify,
    read_history,
    records_from_items,
)
from tests.support.fault_proxy import (
    CancelTransaction,
    Delay,
    DropResponse,
    FaultProxy,
    Reset,
    Rule,
    dynamodb_error,
    html_error,
)
from tests.support.tables import issued_records, make_table, slot_items

POOL = "soak"
POOL_WEIGHTS = {POOL: 5, "lower": 2, "mixed": 2, "cards": 1}
"""Which pool a claimer's request names: the main pool, a case-insensitive pool of lower-case codes, a
case-sensitive one (base62), and an imported-only pool that runs dry."""
CARDS = 1_500
"""Codes imported into the `cards` pool before the run (8-digit numbers, as printed)."""


def pools_toml(pool_target: int) -> str:
    """The run's pools: no two read one text (the loader refuses `OVERLAPPING_VARIANT`), each shape exercised."""
    return f"""
[pools.{POOL}]
alphabet = "unambiguous"
length = 8
target = {pool_target}
low_watermark = 0
shards = 4

[pools.lower]
alphabet = "abcdefghjk"
prefix = "m"
length = 4
target = 150
low_watermark = 0
shards = 2

[pools.mixed]
alphabet = "base62"
prefix = "Q"
length = 3
target = 150
low_watermark = 0
shards = 2

[pools.cards]
alphabet = "numeric"
prefix = "C"
length = 8
default_blocklist = false
imported_only = true
target = 10
low_watermark = 0
"""


def variant_refusal() -> str:
    """What the loader says of `OVERLAPPING_VARIANT` (it must refuse it)."""
    try:
        parse_pools(tomllib.loads(OVERLAPPING_VARIANT))
    except ConfigError as exc:
        return str(exc)
    raise AssertionError("the loader accepted two pools that key one text twice")


OVERLAPPING_VARIANT = (
    '[pools.lower]\nalphabet = "abcdefghjk"\nprefix = "m"\nlength = 4\ntarget = 150\n'
    '[pools.mixed]\nalphabet = "base62"\nprefix = "m"\nlength = 4\ntarget = 150\n'
)
"""The same two shapes with one prefix: `mixed` (case-sensitive) shows `mabcd`, which `lower` keys as `MABCD`."""
CLIENT_ENVIRONMENT = {
    "DYNAMODB_CONNECT_TIMEOUT": "0.5",
    "DYNAMODB_READ_TIMEOUT": "1",
    "DYNAMODB_MAX_ATTEMPTS": "3",
    "REQUEST_BUDGET_SECONDS": "3",
    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
COUNTER_TOLERANCE = 10
COUNTER_TOLERANCE_SHARE = 0.03
"""How far a pool's `issued` may drift from its records (less its slots of issued codes) under engine freezes and
restarts: a write of unknown outcome that lands after the refill read whether it landed is not counted (README
"Pool statistics"); 0 to 8 codes a pool in CI runs. Without engine trouble the soak finds no drift; the drift is
reported either way. The double counting this check was written against drifted by a third (460 of 1,310)."""
CALM_WAIT_SECONDS = 180.0
"""How long a refiller waits, after the run, for the faults to be turned off before its last run."""
KEYED_SHARE = 0.6
RETRIES_PER_KEY = 3


@dataclass
class SoakConfig:
    seconds: float = 60.0
    seed: int = 1
    processes: int = 16
    kill_every: tuple[float, float] = (1.0, 4.0)
    engine_trouble_every: tuple[float, float] = (12.0, 20.0)
    freeze_seconds: float = 1.5
    pool_target: int = 300
    fault_scale: float = 1.0
    """Multiplies every fault rate (0: no faults)."""


@dataclass
class SoakResult:
    report: Report
    kills: int = 0
    freezes: int = 0
    restarts: int = 0
    final_retries: int = 0
    seconds: float = 0.0
    fault_counts: dict[str, int] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)
    refused_variant: str = ""
    """The loader's refusal of `OVERLAPPING_VARIANT`, the overlapping pools this run cannot have."""
    """Per pool: `issued` as the pool's statistics say, and its records in the table (they must be equal)."""

    def summary(self) -> dict[str, Any]:
        return {
            **self.report.figures(),
            "valid": self.report.valid,
            "kills": self.kills,
            "freezes": self.freezes,
            "restarts": self.restarts,
            "final_retries": self.final_retries,
            "seconds": round(self.seconds, 1),
            "ops_per_second": round(self.report.invoked / self.seconds, 1) if self.seconds else 0.0,
            "faults_injected": self.fault_counts,
            "counters": self.counters,
            "refused_variant": self.refused_variant,
            "violations": self.report.violations,
        }


def fault_rules(scale: float) -> list[Rule]:
    """Per-request fault rates; each rule draws on its own, in this order."""
    rates: list[tuple[str, Any, float]] = [
        ("TransactWriteItems", DropResponse(), 0.015),
        ("TransactWriteItems", CancelTransaction("ThrottlingError"), 0.01),
        ("TransactWriteItems", CancelTransaction("TransactionConflict"), 0.005),
        ("TransactWriteItems", dynamodb_error("ThrottlingException"), 0.01),
        ("TransactWriteItems", html_error(503), 0.005),
        ("TransactWriteItems", Reset(), 0.005),
        ("TransactWriteItems", Delay(1.3), 0.003),
        ("Query", dynamodb_error("ProvisionedThroughputExceededException"), 0.01),
        ("Query", html_error(500), 0.005),
        ("Query", Reset(), 0.005),
        ("GetItem", dynamodb_error("ThrottlingException"), 0.02),
        ("BatchWriteItem", DropResponse(), 0.01),
        ("BatchWriteItem", dynamodb_error("ProvisionedThroughputExceededException"), 0.01),
        ("BatchGetItem", dynamodb_error("ThrottlingException"), 0.01),
        ("PutItem", DropResponse(), 0.01),
        ("UpdateItem", DropResponse(), 0.01),
    ]
    return [Rule(fault, operation=operation, rate=min(1.0, rate * scale)) for operation, fault, rate in rates]


# --- child processes --------------------------------------------------------------------------------------------


def _configure(environment: dict[str, str], log: str) -> None:
    """A child's environment; its logs and EMF metrics go to the run's log file, not the terminal."""
    os.environ.update(environment)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _issue(request: Request) -> tuple[int, Any]:
    from issuer.app import lambda_handler
    from tests.support.events import decode, rest

    headers = {"Idempotency-Key": request.key} if request.key else None
    status, _, body = decode(lambda_handler(rest("POST", "/codes", json.dumps(request.body()), headers), None))  # type: ignore[arg-type]
    return status, body


def _attempt(writer: HistoryWriter, operation_id: str, request: Request, retry_of: str | None = None) -> str:
    writer.invoked(operation_id, request, retry_of)
    try:
        status, body = _issue(request)
        outcome, codes, detail = classify(status, body)
    except Exception as exc:  # the handler itself must not raise; if it does, the op stays indeterminate
        outcome, codes, detail = "info", [], f"raised {type(exc).__name__}: {exc}"
    writer.completed(operation_id, outcome, codes, detail)
    return outcome


def claimer_main(name: str, history: str, environment: dict[str, str], until: float, seed: int, retry: str) -> None:
    """One container: issue until `until`; first retry the in-flight keyed request of a killed predecessor."""
    _configure(environment, history.replace(".jsonl", ".log"))
    writer = HistoryWriter(Path(history), name)
    rng = random.Random(seed)  # the mix of requests, not codes: codes come from `secrets` inside the handler
    if retry:
        predecessor = json.loads(retry)
        request = Request(**predecessor["request"])
        for attempt in range(RETRIES_PER_KEY):
            if _attempt(writer, f"{name}-r{attempt}", request, retry_of=predecessor["id"]) != "info":
                break
    number = 0
    while time.time() < until:
        number += 1
        operation_id = f"{name}-{number}"
        keyed = rng.random() < KEYED_SHARE
        request = Request(
            tag=f"t-{operation_id}",
            pool=rng.choices(list(POOL_WEIGHTS), weights=list(POOL_WEIGHTS.values()))[0],
            count=rng.choice((1, 1, 1, 2, 3)),
            reference=name,
            key=f"k-{operation_id}" if keyed else None,
        )
        outcome = _attempt(writer, operation_id, request)
        for attempt in range(RETRIES_PER_KEY if keyed else 0):
            if outcome != "info" or time.time() >= until:
                break
            time.sleep(0.1 * (attempt + 1))
            outcome = _attempt(writer, f"{operation_id}-r{attempt}", request, retry_of=operation_id)
    writer.close()


def refiller_main(environment: dict[str, str], until: float, seed: int, log: str, calm: str) -> None:
    """Refill every pool in a loop until `until`; then, once the `calm` file says the faults are off, one more run,
    as the next scheduled run would: it resolves what the last one left (a ledger addition without an answer,
    writes of unknown outcome), which a container that lives on keeps for it (`RefillCarry`)."""
    _configure(environment, log)
    from refiller.app import lambda_handler
    from tests.support.events import load_event

    rng = random.Random(seed)
    while time.time() < until:
        # A failed refill under injected faults is expected (and logged); the next one goes on.
        with contextlib.suppress(Exception):
            lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]
        time.sleep(rng.uniform(0.1, 0.6))
    give_up = time.time() + CALM_WAIT_SECONDS
    while not Path(calm).exists() and time.time() < give_up:
        time.sleep(0.1)
    lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]


def final_retry_main(history: str, environment: dict[str, str], pending: str) -> None:
    """A fresh process: one more retry, with the same key, of every key whose requests all stayed indeterminate."""
    _configure(environment, history.replace(".jsonl", ".log"))
    writer = HistoryWriter(Path(history), "final")
    for index, entry in enumerate(json.loads(pending)):
        _attempt(writer, f"final-{index}", Request(**entry["request"]), retry_of=entry["id"])
    writer.close()


# --- the coordinator --------------------------------------------------------------------------------------------


@contextmanager
def _engine(seed: int) -> Iterator[DynamoDBLocal]:
    shm = Path("/dev/shm")
    base = tempfile.mkdtemp(prefix="soak-", dir=shm if shm.is_dir() else None)
    engine = DynamoDBLocal(port=free_port(), db_path=Path(base)).start()
    try:
        yield engine
    finally:
        engine.stop()
        shutil.rmtree(base, ignore_errors=True)


def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["issuer.app", "refiller.app", "tests.support.events"])
    return context


def _in_flight(path: Path) -> dict[str, Any] | None:
    """The last operation of a killed process's history if it never completed and has a key."""
    operations = read_history([path])
    if not operations:
        return None
    last = operations[-1]
    if last.outcome != "info" or last.request.key is None:
        return None
    return {"id": last.id, "request": asdict(last.request)}


def _unresolved_keys(operations: list[Operation]) -> list[dict[str, Any]]:
    by_key: dict[str, list[Operation]] = {}
    for operation in operations:
        if operation.request.key is not None:
            by_key.setdefault(operation.request.key, []).append(operation)
    return [
        {"id": attempts[-1].id, "request": asdict(attempts[-1].request)}
        for attempts in by_key.values()
        if all(attempt.outcome == "info" for attempt in attempts)
    ]


def run_soak(config: SoakConfig, workdir: Path) -> SoakResult:
    started = time.monotonic()
    rng = random.Random(config.seed)
    context = _context()
    histories = workdir / "histories"
    histories.mkdir(parents=True, exist_ok=True)
    with _engine(config.seed) as engine, FaultProxy(engine.endpoint_url, seed=config.seed) as proxy:
        settings = make_table(engine.endpoint_url)
        pools = workdir / "pools.toml"
        pools.write_text(pools_toml(config.pool_target))
        asyncio.run(_import_cards(settings, pools))
        environment = {
            **CLIENT_ENVIRONMENT,
            "AWS_ENDPOINT_URL_DYNAMODB": proxy.url,
            "TABLE_NAME": settings.table_name,
            "POOLS_FILE": str(pools),
        }
        until = time.time() + config.seconds
        calm = workdir / "calm"
        refillers: list[BaseProcess] = [
            context.Process(
                target=refiller_main,
                args=(environment, until, config.seed + n, str(workdir / f"refiller{n}.log"), str(calm)),
            )
            for n in range(2)
        ]
        for process in refillers:
            process.start()
        time.sleep(1.0)  # a first refill before the claimers start
        for rule in fault_rules(config.fault_scale):
            proxy.add(rule)

        claimers: dict[str, tuple[BaseProcess, Path]] = {}
        serial = 0

        def start_claimer(retry: dict[str, Any] | None = None) -> None:
            nonlocal serial
            serial += 1
            name = f"c{serial}"
            path = histories / f"{name}.jsonl"
            process = context.Process(
                target=claimer_main,
                args=(
                    name,
                    str(path),
                    environment,
                    until,
                    config.seed * 1000 + serial,
                    json.dumps(retry) if retry else "",
                ),
            )
            process.start()
            claimers[name] = (process, path)

        for _ in range(config.processes):
            start_claimer()

        result = SoakResult(report=Report(), refused_variant=variant_refusal())
        trouble = threading.Thread(target=_engine_trouble, args=(engine, config, until, rng, result), daemon=True)
        trouble.start()
        next_kill = time.time() + rng.uniform(*config.kill_every)
        while time.time() < until:
            time.sleep(0.05)
            if time.time() < next_kill:
                continue
            next_kill = time.time() + rng.uniform(*config.kill_every)
            alive = [name for name, (candidate, _) in claimers.items() if candidate.is_alive()]
            if not alive:
                continue
            victim, path = claimers.pop(rng.choice(alive))
            victim.kill()
            victim.join()
            result.kills += 1
            start_claimer(_in_flight(path))
        trouble.join()
        for claimer, _ in claimers.values():
            claimer.join(timeout=30)
        result.fault_counts = _fault_counts(proxy)
        proxy.clear()
        calm.touch()
        for refiller in refillers:
            refiller.join(timeout=CALM_WAIT_SECONDS)
        pending = _unresolved_keys(read_history(sorted(histories.glob("*.jsonl"))))
        result.final_retries = len(pending)
        final = context.Process(
            target=final_retry_main, args=(str(histories / "final.jsonl"), environment, json.dumps(pending))
        )
        final.start()
        final.join()

        operations = read_history(sorted(histories.glob("*.jsonl")))
        records = records_from_items(asyncio.run(_issued_items(settings)).values())
        result.report = check(operations, records)
        result.counters = asyncio.run(_counters(settings, pools))
        for pool, figures in result.counters.items():
            drift = figures["issued"] - (figures["records"] - figures["reissuedSlots"])
            if abs(drift) > max(COUNTER_TOLERANCE, COUNTER_TOLERANCE_SHARE * figures["records"]):
                result.report.violations.append(
                    f"counter: pool {pool} says {figures['issued']} issued, the table holds {figures['records']} "
                    f"records and {figures['reissuedSlots']} slots of issued codes"
                )
    result.seconds = time.monotonic() - started
    return result


def _engine_trouble(
    engine: DynamoDBLocal, config: SoakConfig, until: float, rng: random.Random, result: SoakResult
) -> None:
    """Alternate a freeze and a clean restart on the same -dbPath and port, every so often."""
    restart = False
    while True:
        pause = rng.uniform(*config.engine_trouble_every)
        if time.time() + pause + config.freeze_seconds + 5 > until:
            return
        time.sleep(pause)
        if restart:
            engine.stop()
            engine.start()
            result.restarts += 1
        else:
            engine.freeze()
            time.sleep(config.freeze_seconds)
            engine.thaw()
            result.freezes += 1
        restart = not restart


async def _issued_items(settings: Settings) -> dict[str, dict[str, Any]]:
    # A consistent scan of a long run's table (hundreds of thousands of items on a -dbPath) takes seconds per
    # page: the clients' 1 s read timeout is for requests, not for this.
    patient = dataclasses.replace(settings, read_timeout=120.0, max_attempts=10)
    async with AsyncExitStack() as stack:
        return await issued_records(await open_client(patient, stack), settings.table_name)


async def _import_cards(settings: Settings, pools: Path) -> None:
    configured = load_pools(pools)
    lines = [(number + 1, f"C{40_000_000 + number * 7_919}") for number in range(CARDS)]
    async with Container.open(settings, configured) as container:
        summary = await import_codes(container.repository, configured["cards"], lines)
    if summary.imported != CARDS:
        raise RuntimeError(f"the soak's cards did not import: {summary.to_json()}")


async def _counters(settings: Settings, pools: Path) -> dict[str, dict[str, int]]:
    """Each pool's `issued` as `GET /pools/{pool}` tells it, its records in the table (read directly), and its
    slots whose code is issued: a slot written again by an SDK retry after its claim (the ledger counted the write
    once) makes `issued` one short until a claim meets it (README "Pool statistics"); the figures must then be
    `issued == records - reissuedSlots` exactly."""
    configured = load_pools(pools)
    items = await _issued_items(settings)
    records = records_from_items(items.values())
    patient = dataclasses.replace(settings, read_timeout=120.0, max_attempts=10)
    async with AsyncExitStack() as stack:
        slots = await slot_items(await open_client(patient, stack), settings.table_name)
    counters: dict[str, dict[str, int]] = {}
    async with Container.open(settings, configured) as container:
        for name, pool in configured.items():
            stats = await pool_stats(container.repository, pool)
            ledger = await container.repository.get_ledger(name)
            held = sum(1 for record in records.values() if record.pool == name)
            reissued = sum(
                1 for slot in slots if slot["pk"]["S"].startswith(f"POOL#{name}#") and slot["sk"]["S"] in items
            )
            counters[name] = {
                "drift": stats.issued - (held - reissued),
                "reissuedSlots": reissued,
                "issued": stats.issued,
                "records": held,
                "available": stats.available,
                "written": ledger.written,
                "imported": ledger.imported,
                "stale": ledger.stale,
            }
    return counters


def _fault_counts(proxy: FaultProxy) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rule in proxy.rules:
        if rule.fired:
            label = f"{rule.operation}:{type(rule.fault).__name__}"
            counts[label] = counts.get(label, 0) + rule.fired
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=64, help="claimer processes (Lambda containers)")
    parser.add_argument("--pool-target", type=int, default=300)
    parser.add_argument(
        "--trouble-every",
        type=float,
        nargs=2,
        default=(40.0, 60.0),
        metavar=("MIN", "MAX"),
        help="seconds between engine troubles (a freeze, then a restart, alternately); every restart is a cold JVM",
    )
    parser.add_argument("--out", type=Path, help="write the summary as JSON here too")
    args = parser.parse_args(argv)
    config = SoakConfig(
        seconds=args.minutes * 60,
        seed=args.seed,
        processes=args.processes,
        pool_target=args.pool_target,
        engine_trouble_every=tuple(args.trouble_every),
    )
    # Kept when the run fails (its histories and logs are the evidence); removed once the verdict is in.
    workdir = Path(tempfile.mkdtemp(prefix="soak-run-"))
    result = run_soak(config, workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    summary = result.summary()
    print(result.report.summary())
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"config": asdict(config), "result": summary}, indent=2) + "\n")
    return 0 if result.report.valid else 1


if __name__ == "__main__":
    sys.exit(main())
