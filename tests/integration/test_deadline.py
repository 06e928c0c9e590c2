"""One request, one deadline: whatever DynamoDB does, the caller gets our 503 with Retry-After within the budget.

A proxy in front of DynamoDB Local never answers, or answers after the budget; with and without an
Idempotency-Key; at the default SDK settings (4 attempts of 3 s), where a key used to cost 28.7 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import issuer.app
import refiller.app
from localdev.engines import DynamoDBLocal
from tests.support.events import Event, call, rest
from tests.support.fault_proxy import Delay, Fault, FaultProxy, Hang, Rule
from tests.support.tables import drop_table, make_table

BUDGET_SECONDS = 2.0
SLACK_SECONDS = 1.0


@pytest.fixture
def proxy(dynamodb_local: DynamoDBLocal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The handlers at default SDK settings, through a proxy, on a filled pool."""
    settings = make_table(dynamodb_local.endpoint_url)
    pools = tmp_path / "pools.toml"
    pools.write_text('[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 50\n')
    with FaultProxy(dynamodb_local.endpoint_url) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", running.url)
        monkeypatch.setenv("TABLE_NAME", settings.table_name)
        monkeypatch.setenv("POOLS_FILE", str(pools))
        monkeypatch.setenv("REQUEST_BUDGET_SECONDS", str(BUDGET_SECONDS))
        issuer.app.container.close()
        refiller.app.container.close()
        refiller.app.lambda_handler({"pool": "default"}, None)  # type: ignore[arg-type]
        yield running
        issuer.app.container.close()
        refiller.app.container.close()
    drop_table(settings)


def post(key: str | None) -> Event:
    return rest("POST", "/codes", '{"usedBy": "deadline"}', {"Idempotency-Key": key} if key else None)


class ShortLivedContext:
    """What Lambda passes: here, an invocation with little time left."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def timed(event: Event, context: Any = None) -> tuple[float, int, dict[str, str], Any]:
    started = time.monotonic()
    status, headers, body = call(event, context)
    return time.monotonic() - started, status, headers, body


def assert_our_503(status: int, headers: dict[str, str], body: Any) -> None:
    assert status == 503, body
    assert int(headers["Retry-After"]) >= 1
    assert body["error"]["code"] == "store_unavailable"
    assert "deadline" in body["error"]["message"]


FAULTS = {"never-answers": Hang(), "answers-too-late": Delay(BUDGET_SECONDS + 3)}


@pytest.mark.parametrize("fault", list(FAULTS.values()), ids=list(FAULTS))
@pytest.mark.parametrize("key", [None, "deadline-key"], ids=["no-key", "key"])
@pytest.mark.parametrize("warm", [False, True], ids=["cold-prefetch", "warm-claim"])
def test_a_stalled_engine_gets_our_503_within_the_budget(
    proxy: FaultProxy, fault: Fault, key: str | None, warm: bool
) -> None:
    if warm:
        assert call(post(None))[0] == 201  # the container now holds a window: the next request only claims
    else:
        issuer.app.container.close()
    proxy.add(Rule(fault))
    elapsed, status, headers, body = timed(post(key))
    assert_our_503(status, headers, body)
    assert elapsed < BUDGET_SECONDS + SLACK_SECONDS


def test_lambdas_remaining_time_caps_the_budget(proxy: FaultProxy) -> None:
    proxy.add(Rule(Hang()))
    elapsed, status, headers, body = timed(post("short"), ShortLivedContext(remaining_ms=1200))
    assert_our_503(status, headers, body)
    assert elapsed < 1.2


@pytest.mark.parametrize("path", ["/codes/ABCD2345", "/pools/default"])
def test_reads_have_the_same_deadline(proxy: FaultProxy, path: str) -> None:
    issuer.app.container.close()
    proxy.add(Rule(Hang()))
    elapsed, status, headers, body = timed(rest("GET", path))
    assert_our_503(status, headers, body)
    assert elapsed < BUDGET_SECONDS + SLACK_SECONDS


def test_a_late_write_is_returned_to_the_retry_with_the_same_key(proxy: FaultProxy) -> None:
    """The claim reaches DynamoDB after the client got its 503: the retry with the key gets that code."""
    assert call(post(None))[0] == 201
    proxy.add(Rule(Delay(BUDGET_SECONDS + 1), operation="TransactWriteItems", times=1))
    _, status, headers, body = timed(post("late"))
    assert_our_503(status, headers, body)
    time.sleep(2.5)  # the delayed write lands
    late = [e for e in proxy.log if e.operation == "TransactWriteItems" and e.upstream_status is not None]
    assert late, "the delayed claim never reached DynamoDB Local"
    assert late[-1].upstream_status == 200
    status, headers, first = call(post("late"))
    assert status == 201
    assert headers.get("Idempotent-Replayed") == "true"
    assert call(post("late"))[2] == first
