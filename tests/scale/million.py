"""A pool of a million codes on DynamoDB Local, driven as a user would: refill, stats, serve ready, GET /pools/{pool}.

    python -m tests.scale.million [--codes 1000000] [--out benchmarks/results/scale.json]

(`make scale`.) Knowing a pool's depth must not grow with the pool (`codepool.queries.pool_depth`): before, every
refill, `stats` and `serve`'s readiness counted every slot (10 pages of 1 MB a shard at this size, 37.5 s on
DynamoDB Local), so none of them worked past a few hundred thousand codes. Each step below is checked, timed and
recorded, with the estimate's error against an exact count (which only this check makes). It takes about three
minutes, most of it writing the million codes, so it is not part of `make test`; the estimate itself is tested
there (tests/unit/test_pool_depth.py, tests/integration/test_pool_depth.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from codepool.config import Settings
from codepool.dynamodb.client import open_client
from codepool.dynamodb.keys import slot_partition
from codepool.queries import COUNTED_SLOTS_PER_SHARD
from localdev.engines import DynamoDBLocal, free_port
from tests.integration.serving import http
from tests.support.tables import make_table

POOL = "big"
SHARDS = 4
REQUEST_BUDGET_SECONDS = 5.0


def cli(settings: Settings, pools: Path, *args: str) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    command = [sys.executable, "-m", "localdev", *args, "--endpoint-url", str(settings.endpoint_url),
               "--table", settings.table_name, "--pools-file", str(pools)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"unique-codes {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return took, json.loads(done.stdout)


async def exact_count(settings: Settings) -> int:
    """Every slot of the pool, page by page: what the product no longer does, for the record."""
    total = 0
    patient = dataclasses.replace(settings, read_timeout=120.0)  # a 1 MB page takes seconds on DynamoDB Local
    async with AsyncExitStack() as stack:
        client = await open_client(patient, stack)
        for shard in range(SHARDS):
            arguments: dict[str, Any] = {
                "TableName": settings.table_name,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": slot_partition(POOL, shard)}},
                "Select": "COUNT",
            }
            while True:
                page = await client.query(**arguments)
                total += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total


def serve_until_ready(settings: Settings, pools: Path, log: Path) -> tuple[float, float, dict[str, Any]]:
    port = free_port()
    command = [sys.executable, "-m", "localdev", "serve", "--port", str(port), "--endpoint-url",
               str(settings.endpoint_url), "--table", settings.table_name, "--pools-file", str(pools),
               "--refill-interval", "3600"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        try:
            started = time.monotonic()
            while time.monotonic() - started < 300:
                if process.poll() is not None:
                    raise SystemExit(f"serve exited with {process.returncode}:\n{log.read_text()}")
                try:
                    if http(f"{url}/pools")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.2)
            else:
                raise SystemExit(f"serve not ready within 300 s:\n{log.read_text()}")
            ready = time.monotonic() - started
            asked = time.monotonic()
            status, _, body = http(f"{url}/pools/{POOL}")
            answered = time.monotonic() - asked
            if status != 200:
                raise SystemExit(f"GET /pools/{POOL} answered {status}: {body}")
            return ready, answered, body
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args()
    engine = DynamoDBLocal().start()
    try:
        settings = make_table(engine.endpoint_url)
        with tempfile.TemporaryDirectory() as folder:
            pools = Path(folder) / "pools.toml"
            pools.write_text(
                f'[pools.{POOL}]\nalphabet = "unambiguous"\nlength = 8\ntarget = {args.codes}\nshards = {SHARDS}\n'
            )
            steps: dict[str, Any] = {}
            took, first = cli(settings, pools, "refill", "--pool", POOL, "--quiet")
            steps["first refill"] = {"seconds": round(took, 1), "written": first["refilled"][0]["written"]}
            exact = asyncio.run(exact_count(settings))
            took, again = cli(settings, pools, "refill", "--pool", POOL, "--quiet")
            summary = again["refilled"][0]
            steps["second refill"] = {"seconds": round(took, 1), "availableBefore": summary["availableBefore"],
                                      "written": summary["written"]}  # fmt: skip
            took, stats = cli(settings, pools, "stats", "--pool", POOL)
            (pool_stats,) = stats["pools"]
            steps["stats"] = {"seconds": round(took, 1), **{key: pool_stats[key] for key in
                              ("available", "issued", "countsExact", "countsMargin")}}  # fmt: skip
            ready, answered, body = serve_until_ready(settings, pools, Path(folder) / "serve.log")
            steps["serve ready"] = {"seconds": round(ready, 1)}
            steps[f"GET /pools/{POOL}"] = {"seconds": round(answered, 2), "available": body["available"],
                                           "countsMargin": body["countsMargin"]}  # fmt: skip
    finally:
        engine.stop()
    error = pool_stats["available"] - exact
    result = {
        "codes": args.codes,
        "exactSlots": exact,
        "countedSlotsPerShard": COUNTED_SLOTS_PER_SHARD,
        "estimateError": error,
        "estimateWithinMargin": abs(error) <= pool_stats["countsMargin"],
        "steps": steps,
    }
    print(json.dumps(result, indent=2))
    checks = [
        (exact >= args.codes, f"the refill wrote {exact} slots, fewer than {args.codes}"),
        (summary["written"] < 0.05 * args.codes, "the second refill rewrote the pool"),
        (answered < REQUEST_BUDGET_SECONDS, f"GET /pools/{POOL} took {answered:.1f} s"),
        (abs(error) <= 2.5 * pool_stats["countsMargin"], f"the estimate is off by {error}"),
    ]
    failed = [message for ok, message in checks if not ok]
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if failed:
        raise SystemExit("; ".join(failed))


if __name__ == "__main__":
    main()
