"""One emulated Lambda container: `python -m benchmarks.lambda_emulator CONTENDER EVENT_FILE [options]`.

The parent process spawns this module as a fresh interpreter, as Lambda starts a fresh runtime for a cold
start. Init is the interval from the parent's spawn to the moment the handler module is imported (interpreter
start + imports + module-level set-up), measured on the shared monotonic clock. The child then invokes the
handler like the runtime does and times each invocation itself. Protocol: one JSON line prefixed with
`@bench ` on stdout (the handlers' own logs and EMF metrics go to stdout too, as on Lambda).
"""

from __future__ import annotations

import time

STARTED = time.monotonic()

import argparse  # noqa: E402 - the clock above must start before anything else is imported
import importlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

PROTOCOL_PREFIX = "@bench "
FLOOR_KEY = {"pk": {"S": "BENCH#floor"}, "sk": {"S": "FLOOR"}}
FLOOR_POOL = "bench-floor"
FLOOR_SHARDS = 4


class EmulatedContext:
    """The attributes of a Lambda context object that handlers and Powertools read."""

    function_name = "unique-codes-issuer"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unique-codes-issuer"
    log_group_name = "/aws/lambda/unique-codes-issuer"
    log_stream_name = "emulated"

    def __init__(self, request_id: str, memory_mb: int) -> None:
        self.aws_request_id = request_id
        self.memory_limit_in_mb = memory_mb

    def get_remaining_time_in_millis(self) -> int:
        return 3000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender")
    parser.add_argument("event_file")
    parser.add_argument("--invocations", type=int, default=5)
    parser.add_argument("--warm", type=int, default=0, help="further warm invocations, reported apart")
    parser.add_argument(
        "--floor", action="store_true", help="interleave a bare UpdateItem and a bare claim-shaped transaction"
    )
    parser.add_argument("--memory-mb", type=int, default=512)
    args = parser.parse_args()

    from benchmarks.contenders import HANDLERS

    imported_at = time.monotonic()
    module = importlib.import_module(HANDLERS[args.contender])
    handler = module.lambda_handler
    ready = time.monotonic()

    with open(args.event_file, encoding="utf-8") as file:
        event = json.load(file)
    codes: list[str] = []

    def invoke(number: int) -> float:
        context = EmulatedContext(f"bench-{args.contender}-{number}", args.memory_mb)
        started = time.perf_counter()
        response = handler(event, context)
        took = (time.perf_counter() - started) * 1000
        if response.get("statusCode") != 201:
            raise SystemExit(f"{args.contender}: invocation {number} answered {response}")
        codes.append(json.loads(response["body"])["code"])
        return took

    durations = [invoke(n) for n in range(args.invocations)]
    max_rss_kb = peak_rss_kb()
    warm: list[float] = []
    floor: list[float] = []
    transact_floor: list[float] = []
    floors = _floor_runners(module, args.warm) if args.floor else None
    for n in range(args.warm):
        if floors is None:
            warm.append(invoke(args.invocations + n))
            continue
        # Interleaved triples, the order rotating, so no contender always runs right after another.
        for which in (n % 3, (n + 1) % 3, (n + 2) % 3):
            if which == 0:
                warm.append(invoke(args.invocations + n))
            elif which == 1:
                floor.append(floors[0]())
            else:
                transact_floor.append(floors[1]())
    report: dict[str, Any] = {
        "contender": args.contender,
        "started": STARTED,
        "ready": ready,
        "import_ms": (ready - imported_at) * 1000,
        "bootstrap_ms": (ready - STARTED) * 1000,
        "durations_ms": durations,
        "max_rss_kb": max_rss_kb,
        "warm_ms": warm,
        "floor_ms": floor,
        "transact_floor_ms": transact_floor,
        "codes": codes,
    }
    sys.stdout.write(PROTOCOL_PREFIX + json.dumps(report) + "\n")


def peak_rss_kb() -> int:
    """This process's peak resident set size, like Lambda's "Max Memory Used".

    `/proc/self/status` VmHWM, not `getrusage`: Linux carries `ru_maxrss` across `execve`, so a child spawned
    from a big parent reports the parent's peak (every contender read 77.8 MB here).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _floor_runners(module: Any, count: int) -> tuple[Any, Any]:
    """Timers of bare requests on the container's own client and loop.

    A bare `UpdateItem` is the floor of any write (the old warm ratio's denominator). A bare two-item
    `TransactWriteItems` of our claim's shape is the floor of our data model: delete a slot on
    `attribute_exists(pk)` and put an issued-code record on `attribute_not_exists(pk)`, with a client request
    token, as `DynamoDBRepository.claim` sends it. Its `count` slots are written before anything is timed, under
    a pool and keys no configured pool or format can produce (a `~` is in no alphabet).
    """
    from codepool.dynamodb.items import record_item
    from codepool.dynamodb.keys import slot_key
    from codepool.model import IssuedCode, utc_timestamp

    holder = module.container

    async def handler_client(container: Any) -> Any:
        return container.client  # the very client the handler uses

    client = holder.run(handler_client)
    table = holder.settings.table_name
    run = uuid.uuid4().hex[:12]
    slots = [slot_key(FLOOR_POOL, n % FLOOR_SHARDS, f"~FLOOR-{run}-{n:05d}") for n in range(count)]

    async def write_slots(_: Any) -> None:
        for start in range(0, len(slots), 25):
            request: Any = {
                table: [{"PutRequest": {"Item": {**key, "code": {"S": "~"}}}} for key in slots[start : start + 25]]
            }
            while request:
                request = (await client.batch_write_item(RequestItems=request)).get("UnprocessedItems") or None

    holder.run(write_slots)
    taken = iter(range(count))

    def timed(call: Any) -> float:
        async def request(_: Any) -> None:
            await call()

        started = time.perf_counter()
        holder.run(request)
        return (time.perf_counter() - started) * 1000

    def update() -> float:
        return timed(
            lambda: client.update_item(
                TableName=table,
                Key=FLOOR_KEY,
                UpdateExpression="ADD hits :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        )

    def transact() -> float:
        n = next(taken)
        key = slots[n]["sk"]["S"]

        async def claim_shaped() -> Any:
            # Built inside the timed call, as the claim builds its actions.
            record = IssuedCode(code=key, pool=FLOOR_POOL, issued_at=utc_timestamp(time.time()), request_id=run)
            actions = [
                {"Delete": {"TableName": table, "Key": slots[n], "ConditionExpression": "attribute_exists(pk)"}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": record_item(key, record),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
            return await client.transact_write_items(TransactItems=actions, ClientRequestToken=uuid.uuid4().hex)

        return timed(claim_shaped)

    return update, transact


if __name__ == "__main__":
    main()
