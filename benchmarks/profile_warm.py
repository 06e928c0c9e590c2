"""Where a warm `POST /codes` spends its time, and what a cold start costs: `python -m benchmarks.profile_warm`.

Modes (all on a fresh DynamoDB Local unless `--endpoint-url` names an engine):

- default: `--requests N` warm invocations of `issuer.app.lambda_handler` with the console's REST v1 event,
  interleaved with a bare two-item `TransactWriteItems` and a bare `UpdateItem` on the handler's own client and
  loop (the median of each, and the ratios); then `--profile N` invocations under cProfile, the top functions by
  cumulative and by own time.
- `--cold N`: N fresh interpreters each for our handler and the naive contender (taking turns), each importing the
  handler module and serving one request: import time and import + first request (median and worst), peak RSS.
- `--importtime`: `python -X importtime -c "import issuer.app"` five times, the top modules by median cumulative time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.environment import EVENT_FILE
from codepool.config import DEFAULT_POOL, PoolConfig, Settings
from codepool.issuing import issue_codes
from codepool.model import Candidate, IssuedCode, IssueRequest, utc_timestamp
from codepool.refilling import refill_pool
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal
from localdev.paths import PROJECT_ROOT
from localdev.schema import create_table

TRANSACT_KEYS = [{"pk": {"S": f"PROFILE#transact{n}"}, "sk": {"S": "FLOOR"}} for n in range(2)]
UPDATE_KEY = {"pk": {"S": "PROFILE#update"}, "sk": {"S": "FLOOR"}}

COLD_CONTENDERS = {
    "ours": ("issuer.app", False),
    "naive": ("benchmarks.contenders.naive", False),
    "ours, SnapStart hooks": ("issuer.app", True),
}
"""Name -> (handler module, whether to run the SnapStart hooks: before_snapshot after the import, then
after_restore as part of the first request, which is what a restored container pays beyond Lambda's restore)."""
COLD_CHILD = """
import importlib, json, sys, time
started = time.perf_counter()
module = importlib.import_module(sys.argv[1])
imported = snapshot = time.perf_counter()
if sys.argv[3] == "snapstart":
    module.before_snapshot()
    snapshot = time.perf_counter()
    module.after_restore()
event = json.loads(sys.argv[2])
response = module.lambda_handler(event, None)
served = time.perf_counter()
assert response["statusCode"] == 201, response
with open("/proc/self/status", encoding="ascii") as status:
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
sys.stderr.write("@profile " + json.dumps({"import_ms": (imported - started) * 1000,
    "before_snapshot_ms": (snapshot - imported) * 1000, "first_request_ms": (served - snapshot) * 1000,
    "max_rss_kb": rss}) + "\\n")
"""


class Context:
    """What the handler and Powertools read of a Lambda context."""

    function_name = "unique-codes-issuer"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unique-codes-issuer"
    memory_limit_in_mb = 512
    aws_request_id = "profile"

    def get_remaining_time_in_millis(self) -> int:
        return 3000


@contextlib.contextmanager
def engine(endpoint_url: str | None) -> Iterator[str]:
    if endpoint_url:
        yield endpoint_url
        return
    local = DynamoDBLocal().start()
    try:
        yield local.endpoint_url
    finally:
        local.stop()


def filled_table(endpoint_url: str, codes: int) -> Settings:
    settings = Settings(endpoint_url=endpoint_url, table_name=f"profile-{int(time.time() * 1000)}")

    async def fill() -> None:
        async with Container.open(settings, pools={}) as container:
            await create_table(container.client, settings.table_name)
            await refill_pool(container.repository, DEFAULT_POOL, codes)

    asyncio.run(fill())
    return settings


def configure(settings: Settings) -> dict[str, str]:
    """The environment an issuer container reads on its first invocation (this process's, and the children's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        TABLE_NAME=settings.table_name,
        AWS_ENDPOINT_URL_DYNAMODB=str(settings.endpoint_url),
        AWS_REGION="us-east-1",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    env.pop("POOLS_FILE", None)
    return env


def issue_event() -> dict[str, Any]:
    """The console's REST v1 test event as `POST /codes` with an empty JSON body."""
    event: dict[str, Any] = json.loads(EVENT_FILE.read_text(encoding="utf-8"))
    event.update(httpMethod="POST", path="/codes", resource="/codes", body="{}")
    return event


def timed_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def warm(requests: int, profile: int, top: int) -> None:
    import issuer.app

    event = issue_event()
    context = Context()
    holder = issuer.app.container

    def invoke() -> None:
        response = issuer.app.lambda_handler(event, context)  # type: ignore[arg-type]
        if response["statusCode"] != 201:
            raise SystemExit(f"the handler answered {response}")

    def bare(name: str, **arguments: Any) -> Callable[[], None]:
        async def request(runtime: Container) -> None:
            await getattr(runtime.client, name)(**arguments)

        return lambda: holder.run(request)

    with quiet_stdout():
        invoke()  # the cold invocation: loop, client, first prefetch
    table = holder.settings.table_name
    transact = bare(
        "transact_write_items", TransactItems=[{"Put": {"TableName": table, "Item": k}} for k in TRANSACT_KEYS]
    )
    update = bare(
        "update_item",
        TableName=table,
        Key=UPDATE_KEY,
        UpdateExpression="ADD hits :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    timers = {
        "handler POST /codes": invoke,
        "issue_codes (no handler)": service(holder),
        "claim write alone": claim_alone(holder, requests + 100),
        "bare TransactWriteItems(2)": transact,
        "bare UpdateItem": update,
    }
    samples: dict[str, list[float]] = {name: [] for name in timers}
    with quiet_stdout():
        for _ in range(50):
            for timer in timers.values():
                timer()
        for _ in range(requests):
            for name, timer in timers.items():
                samples[name].append(timed_ms(timer))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    floor = medians["bare TransactWriteItems(2)"]
    print(f"warm, median of {requests} rounds (each timer once per round, in turn):")
    for name, median in medians.items():
        print(
            f"  {name:28s} {median:7.3f} ms   / transaction {median / floor:5.3f}   {(median - floor) * 1000:+6.0f} us"
        )
    print(f"  handler / UpdateItem {medians['handler POST /codes'] / medians['bare UpdateItem']:.3f}")
    if profile:
        profiler = cProfile.Profile()
        with quiet_stdout():
            profiler.enable()
            for _ in range(profile):
                invoke()
            profiler.disable()
        for order in ("cumulative", "tottime"):
            report = io.StringIO()
            pstats.Stats(profiler, stream=report).strip_dirs().sort_stats(order).print_stats(top)
            print(f"\n--- {profile} warm invocations under cProfile, by {order} ---")
            print(report.getvalue().split("\n", 6)[-1].rstrip())
    holder.close()


def service(holder: Any) -> Callable[[], None]:
    """`issue_codes` on the handler's own container: the handler less the API layer (event, metrics, response)."""

    async def issue(runtime: Container) -> None:
        await issue_codes(runtime.components, IssueRequest())

    return lambda: holder.run(issue)


def claim_alone(holder: Any, codes: int) -> Callable[[], None]:
    """The claim's one `TransactWriteItems` through the repository, on candidates read beforehand from a pool of
    its own: the floor of data model A on this client (no prefetch, no validation, no API layer)."""
    pool = PoolConfig(name="profile", format=DEFAULT_POOL.format, target=max(codes, 1000), low_watermark=0)

    async def candidates(runtime: Container) -> list[Candidate]:
        await refill_pool(runtime.repository, pool, codes)
        found: list[Candidate] = []
        for shard in range(pool.shards):
            found += await runtime.repository.find_candidates(pool.name, shard, "0", codes)
        return found

    queue = holder.run(candidates)

    async def claim(runtime: Container) -> None:
        candidate = queue.pop()
        now = time.time()
        record = IssuedCode(code=candidate.code, pool=pool.name, issued_at=utc_timestamp(now), request_id="profile")
        outcome = await runtime.repository.claim(pool.name, [candidate], [record], None, int(now))
        if outcome.issued is None:
            raise SystemExit(f"the claim of a fresh candidate failed: {outcome}")

    return lambda: holder.run(claim)


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handler's logs and EMF go to stdout, as on Lambda; written to /dev/null here, so the cost stays."""
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def cold(runs: int, env: dict[str, str]) -> None:
    event = json.dumps(issue_event())
    reports: dict[str, list[dict[str, Any]]] = {name: [] for name in COLD_CONTENDERS}
    names = list(COLD_CONTENDERS)
    for round_number in range(runs):
        turn = round_number % len(names)
        for name in names[turn:] + names[:turn]:
            module, snapstart = COLD_CONTENDERS[name]
            reports[name].append(cold_start(module, snapstart, event, env))
    print(f"cold, {runs} fresh interpreters each (median / worst):")
    for name, runs_of in reports.items():
        imports = [r["import_ms"] for r in runs_of]
        first = [r["first_request_ms"] for r in runs_of]
        cold_request = [r["import_ms"] + r["first_request_ms"] for r in runs_of]
        rss = [r["max_rss_kb"] / 1024 for r in runs_of]
        print(f"  {name}:")
        print(f"    import                  {statistics.median(imports):7.1f} / {max(imports):7.1f} ms")
        if COLD_CONTENDERS[name][1]:
            snapshot = [r["before_snapshot_ms"] for r in runs_of]
            print(f"    before_snapshot         {statistics.median(snapshot):7.1f} / {max(snapshot):7.1f} ms")
            print(f"    after_restore + request {statistics.median(first):7.1f} / {max(first):7.1f} ms")
        else:
            print(f"    first request           {statistics.median(first):7.1f} / {max(first):7.1f} ms")
            print(f"    import + first request  {statistics.median(cold_request):7.1f} / {max(cold_request):7.1f} ms")
        print(f"    max RSS                 {statistics.median(rss):7.1f} / {max(rss):7.1f} MB")


def cold_start(module: str, snapstart: bool, event: str, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", COLD_CHILD, module, event, "snapstart" if snapstart else "plain"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("@profile ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"cold start of {module} failed ({done.returncode}): {done.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(lines[-1].removeprefix("@profile "))
    return report


def importtime(top: int, runs: int = 5) -> None:
    """Module -> (cumulative, own) microseconds, the median of `runs` fresh interpreters; nesting kept in the name."""
    timings: dict[str, list[tuple[int, int]]] = {}
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import issuer.app"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "cumulative" in line:
                continue
            own_us, cumulative_us, module = line.removeprefix("import time:").split("|")
            timings.setdefault(module.rstrip(), []).append((int(cumulative_us), int(own_us)))
    rows = [
        (statistics.median([c for c, _ in values]), statistics.median([o for _, o in values]), module)
        for module, values in timings.items()
    ]
    total = max(cumulative for cumulative, _, _ in rows)
    print(f"import issuer.app: {total / 1000:.1f} ms (-X importtime, median of {runs}); top modules by cumulative:")
    for cumulative, own, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative / 1000:7.1f} ms  (own {own / 1000:6.1f})  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="warm invocations timed (interleaved)")
    parser.add_argument("--profile", type=int, default=1000, help="warm invocations under cProfile (0: none)")
    parser.add_argument("--top", type=int, default=30, help="rows of each profile table")
    parser.add_argument("--cold", type=int, default=0, metavar="N", help="N cold starts instead of the warm path")
    parser.add_argument("--importtime", action="store_true", help="the import breakdown instead of the warm path")
    parser.add_argument("--endpoint-url", help="an engine to use instead of a fresh DynamoDB Local")
    args = parser.parse_args()
    if args.importtime:
        importtime(args.top)
        return
    with engine(args.endpoint_url) as endpoint_url:
        codes = args.cold * len(COLD_CONTENDERS) + 20 if args.cold else 2 * args.requests + args.profile + 400
        settings = filled_table(endpoint_url, codes)
        env = configure(settings)
        if args.cold:
            cold(args.cold, env)
            return
        os.environ.clear()
        os.environ.update(env)
        warm(args.requests, args.profile, args.top)


if __name__ == "__main__":
    main()
