"""`refiller.app.lambda_handler` on DynamoDB Local: pools refilled independently, the deadline, the metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import refiller.app
from codepool.config import Settings, load_pools
from codepool.dynamodb.keys import code_key
from codepool.queries import available_count
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal
from tests.support.events import load_event
from tests.support.fault_proxy import FaultProxy, Hang, Rule

POOLS_FILE = """
[pools.default]
alphabet = "unambiguous"
length = 8
target = 30

[pools.tiny]
alphabet = "numeric"
length = 2
target = 5

[pools.after]
alphabet = "unambiguous"
length = 8
target = 40
"""


class ShortLivedContext:
    """A Lambda context with `remaining_ms` left at the start of the invocation."""

    function_name = "unique-codes-refiller"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:unique-codes-refiller"
    memory_limit_in_mb = 512
    aws_request_id = "5ae0cb5c-1d0a-4b5e-9d3e-3b6a1f0c2e11"
    log_group_name = "/aws/lambda/unique-codes-refiller"
    log_stream_name = "test"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


Configure = Callable[[str], Settings]


@pytest.fixture
def configure(local_table: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Point the refiller's environment at the table and a pools file with this text (as the issuer tests do)."""

    def configure_with(pools_text: str) -> Settings:
        pools = tmp_path / "pools.toml"
        pools.write_text(pools_text)
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", str(local_table.endpoint_url))
        monkeypatch.setenv("TABLE_NAME", local_table.table_name)
        monkeypatch.setenv("POOLS_FILE", str(pools))
        monkeypatch.delenv("REFILL_BUDGET_SECONDS", raising=False)
        refiller.app.container.close()
        return dataclasses.replace(local_table, pools_file=str(pools))

    yield configure_with
    refiller.app.container.close()


@pytest.fixture
def lambda_env(configure: Configure) -> Settings:
    return configure(POOLS_FILE)


def issue_every_code(settings: Settings, pool: str) -> None:
    """Record every code of `pool`'s keyspace as issued, as years of claims would have."""

    async def issue() -> None:
        pools = load_pools(settings.pools_file)
        fmt = pools[pool].format
        keys = [fmt.canonical(str(n).zfill(fmt.length)) for n in range(fmt.keyspace)]
        async with Container.open(settings, pools) as container:
            for start in range(0, len(keys), 25):
                puts: list[Any] = [
                    {"PutRequest": {"Item": {**code_key(key), "code": {"S": key}, "pool": {"S": pool}}}}
                    for key in keys[start : start + 25]
                ]
                response = await container.client.batch_write_item(RequestItems={settings.table_name: puts})
                assert not response.get("UnprocessedItems")

    asyncio.run(issue())


def depths(settings: Settings) -> dict[str, int]:
    async def count() -> dict[str, int]:
        pools = load_pools(settings.pools_file)
        async with Container.open(settings, pools) as container:
            return {name: await available_count(container.repository, pool) for name, pool in pools.items()}

    return asyncio.run(count())


def emitted_metrics(out: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed: {"dimensions": {...}, "metrics": {name: value}} each."""
    documents = []
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "UniqueCodes"
        (dimension_names,) = directive["Dimensions"]
        documents.append(
            {
                "dimensions": {name: blob[name] for name in dimension_names},
                "metrics": {metric["Name"]: single(blob[metric["Name"]]) for metric in directive["Metrics"]},
            }
        )
    return documents


def single(value: Any) -> float:
    """An EMF value: Powertools writes each as a list of the values added (one here)."""
    if isinstance(value, list):
        (value,) = value
    return float(value)


def pool_metrics(documents: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        doc["dimensions"]["pool"]: doc["metrics"]
        for doc in documents
        if doc["dimensions"] == {"service": "refiller", "pool": doc["dimensions"].get("pool")}
    }


def pools_below_low_watermark(documents: list[dict[str, Any]]) -> float:
    (value,) = [
        doc["metrics"]["PoolsBelowLowWatermark"]
        for doc in documents
        if "PoolsBelowLowWatermark" in doc["metrics"] and doc["dimensions"] == {"service": "refiller"}
    ]
    assert isinstance(value, float)
    return value


def fleet_metric(documents: list[dict[str, Any]], name: str) -> float:
    (value,) = [
        doc["metrics"][name]
        for doc in documents
        if name in doc["metrics"] and doc["dimensions"] == {"service": "refiller"}
    ]
    assert isinstance(value, float)
    return value


def test_an_exhausted_pool_is_reported_and_alarmed_and_the_pools_after_it_are_refilled(
    lambda_env: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    issue_every_code(lambda_env, "tiny")
    result = refiller.app.lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]
    assert depths(lambda_env) == {"default": 30, "tiny": 0, "after": 40}
    tiny = next(summary for summary in result["refilled"] if summary["pool"] == "tiny")
    assert (tiny["exhausted"], tiny["stopped"], tiny["written"], tiny["swept"]) == (True, "keyspace", 0, 100)
    errors = [record for record in caplog.records if record.levelname == "ERROR"]
    assert [(r.getMessage().split(":")[0], getattr(r, "pool", None)) for r in errors] == [("pool exhausted", "tiny")]
    documents = emitted_metrics(capsys.readouterr().out)
    by_pool = pool_metrics(documents)
    assert {pool: metrics["PoolExhausted"] for pool, metrics in by_pool.items()} == {
        "default": 0,
        "tiny": 1,
        "after": 0,
    }
    assert {pool: metrics["RefillFailed"] for pool, metrics in by_pool.items()} == {"default": 0, "tiny": 0, "after": 0}
    assert (by_pool["after"]["RefillWritten"], by_pool["after"]["PoolAvailableAfterRefill"]) == (40, 40)
    assert pools_below_low_watermark(documents) == 3  # all three started empty
    assert fleet_metric(documents, "PoolsExhausted") == 1

    # The next run: default and after are full, tiny is still exhausted (its sweep is remembered: no new draws).
    again = refiller.app.lambda_handler(load_event("eventbridge-scheduled.json"), None)  # type: ignore[arg-type]
    tiny = next(summary for summary in again["refilled"] if summary["pool"] == "tiny")
    assert (tiny["exhausted"], tiny["swept"], tiny["rounds"]) == (True, 0, 0)
    documents = emitted_metrics(capsys.readouterr().out)
    assert pools_below_low_watermark(documents) == 1
    assert fleet_metric(documents, "PoolsExhausted") == 1


def test_a_run_with_little_time_left_stops_cleanly_with_partial_progress(
    lambda_env: Settings, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # 12.5 s left, less the 10 s margin: 2.5 s for a refill that would take about a minute.
    context = ShortLivedContext(remaining_ms=12_500)
    started = time.monotonic()
    result = refiller.app.lambda_handler({"pool": "after", "target": 200_000}, context)  # type: ignore[arg-type]
    took = time.monotonic() - started
    assert took < 2.5 + 1.0, f"the handler ran {took:.1f} s with a 2.5 s deadline"
    (summary,) = result["refilled"]
    assert (summary["pool"], summary["complete"], summary["stopped"]) == ("after", False, "deadline")
    assert 0 < summary["written"] < 200_000
    assert depths(lambda_env)["after"] >= summary["written"]  # a cut in-flight batch may have landed uncounted
    assert [r.levelname for r in caplog.records if "stopped before its target" in r.getMessage()] == ["WARNING"]
    documents = emitted_metrics(capsys.readouterr().out)
    assert pool_metrics(documents)["after"]["RefillFailed"] == 0
    assert pool_metrics(documents)["after"]["RefillWritten"] == summary["written"]


def test_a_pool_that_needs_more_than_a_run_leaves_time_for_the_pools_after_it(configure: Configure) -> None:
    configure(
        POOLS_FILE.replace("[pools.tiny]", "[pools.big]")
        .replace("numeric", "unambiguous")
        .replace("length = 2\ntarget = 5\n", "length = 8\ntarget = 200000\n")
    )
    # 20 s left, less the margin: a 10 s deadline, shared out as the pools' turns come.
    context = ShortLivedContext(remaining_ms=20_000)
    started = time.monotonic()
    result = refiller.app.lambda_handler(load_event("eventbridge-scheduled.json"), context)  # type: ignore[arg-type]
    assert time.monotonic() - started < 10 + 1.0
    summary = {entry["pool"]: entry for entry in result["refilled"]}
    assert [summary[name]["complete"] for name in ["default", "big", "after"]] == [True, False, True]
    assert summary["big"]["stopped"] == "deadline"
    assert 0 < summary["big"]["written"] < 200_000
    assert summary["after"]["written"] == 40


def test_an_engine_that_stops_answering_after_the_count_ends_the_run_within_its_deadline_with_its_summary(
    configure: Configure,
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pool is counted, then every write hangs (the snapshot's first): each call would take its SDK attempts'
    timeouts, 4 x (1 + 3) s, past the 10 s margin; the run ends at its deadline and logs what it did."""
    configure(POOLS_FILE)
    with FaultProxy(dynamodb_local.endpoint_url, seed=1) as proxy:
        for operation in ("UpdateItem", "TransactWriteItems", "BatchWriteItem", "BatchGetItem"):
            proxy.add(Rule(Hang(), operation=operation))
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
        refiller.app.container.close()
        context = ShortLivedContext(remaining_ms=13_000)  # a 3 s deadline
        started = time.monotonic()
        result = refiller.app.lambda_handler({"pool": "after"}, context)  # type: ignore[arg-type]
        took = time.monotonic() - started
        assert proxy.count("UpdateItem") >= 1
    assert took < 3 + 1.0, f"the handler ran {took:.1f} s with a 3 s deadline"
    (summary,) = result["refilled"]
    assert (summary["pool"], summary["complete"], summary["stopped"], summary["written"]) == (
        "after",
        False,
        "deadline",
        0,
    )
    logged = [r for r in caplog.records if "stopped before its target" in r.getMessage()]
    assert [r.levelname for r in logged] == ["WARNING"]
