"""`unique-codes serve` is `503 not_ready` until its pools are filled, and survives a failed start-up fill.

A fault proxy in front of DynamoDB Local resets every connection at first (the table cannot be created), then
only the refill's writes (the refiller fails). The server keeps listening and answers every request `503` with
`Retry-After` and our JSON body, retries the fill on its own, and once the proxy lets requests through it becomes
ready and issues codes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from botocore.exceptions import ClientError

from codepool.config import Settings
from localdev.engines import DynamoDBLocal
from localdev.server import NOT_READY_RETRY_SECONDS
from tests.integration.serving import http, serving
from tests.support.fault_proxy import FaultProxy, Reset, Rule
from tests.support.tables import drop_table

POOLS = '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 300\n'
FAILED_FILLS = 2
"""Start-up fills that fail (as the log shows) before the proxy lets requests through."""


def wait_for(condition: str, check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {condition}")


def failed_fills(log: Path, reason: str = "") -> int:
    return log.read_text().count(f"not ready: filling the pools failed ({reason}")


def test_not_ready_until_the_pools_are_filled_and_a_failed_fill_does_not_stop_serve(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    table = f"codes-{uuid.uuid4().hex[:12]}"
    with FaultProxy(dynamodb_local.endpoint_url, seed=8) as proxy:
        proxy.add(Rule(Reset()))  # the engine is unreachable: not even the table can be created
        args = ["--endpoint-url", proxy.url, "--table", table]
        try:
            with serving("auto", POOLS, tmp_path, args=args, ready=False) as url:
                wait_for("failed start-up fills in the log", lambda: failed_fills(log) >= FAILED_FILLS)
                for method, path in [("POST", "/codes"), ("GET", "/pools"), ("GET", "/openapi.json"), ("PUT", "/x")]:
                    status, headers, body = http(f"{url}{path}", method, b"{}" if method != "GET" else None)
                    assert status == 503, (method, path, body)
                    assert headers["Retry-After"] == str(NOT_READY_RETRY_SECONDS)
                    assert headers["Content-Type"] == "application/json"
                    assert body["error"]["code"] == "not_ready"
                    assert "filling its pools" in body["error"]["message"]

                # The table is created now, but writing the pool's codes fails: the refiller's own failure.
                proxy.clear()
                proxy.add(Rule(Reset(), operation="BatchWriteItem"))
                wait_for("failed refills in the log", lambda: failed_fills(log, "RefillError") >= FAILED_FILLS)
                assert proxy.count("CreateTable") >= 1
                assert http(f"{url}/codes", "POST")[0] == 503

                proxy.clear()
                wait_for("serve became ready", lambda: http(f"{url}/pools")[0] == 200, seconds=30)
                status, _, issued = http(f"{url}/codes", "POST")
                assert status == 201, issued
                status, _, pool = http(f"{url}/pools/default")
                assert (status, pool["available"]) == (200, 299)
            text = log.read_text()
            assert "ready: codes available per pool: default 300" in text, text
        finally:
            with suppress(ClientError):  # not created, if serve never got that far
                drop_table(Settings(endpoint_url=dynamodb_local.endpoint_url, table_name=table))
