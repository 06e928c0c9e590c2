"""DynamoDB freezes mid-claim (SIGSTOP): bounded 503s, then no duplicate and no orphaned code once it thaws."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import issuer.app
import refiller.app
from codepool.runtime import Container
from localdev.engines import DynamoDBLocal
from tests.reliability.own_engine import own_engine_with_handlers
from tests.support.events import call, rest
from tests.support.tables import issued_records

BOUND_SECONDS = 5.0
"""One DynamoDB call's worst case: 2 attempts of (0.5 s connect + 0.5 s read), plus the SDK's jittered backoff
between them (up to 2 s in "standard" mode), plus slack for a loaded machine."""
FREEZE_SECONDS = 2 * BOUND_SECONDS + 2
TIMEOUTS = {"DYNAMODB_CONNECT_TIMEOUT": "0.5", "DYNAMODB_READ_TIMEOUT": "0.5", "DYNAMODB_MAX_ATTEMPTS": "2"}


@pytest.fixture
def frozen_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBLocal]:
    """A DynamoDB Local of its own, since freezing it would stall every other test."""
    yield from own_engine_with_handlers(monkeypatch, TIMEOUTS)


def post(body: str, key: str) -> tuple[int, dict[str, str], Any]:
    return call(rest("POST", "/codes", body, {"Idempotency-Key": key}))


def test_brownout_gives_bounded_503s_and_retries_with_the_same_key_lose_nothing(
    frozen_engine: DynamoDBLocal,
) -> None:
    engine = frozen_engine
    refiller.app.lambda_handler({"pool": "default", "target": 200}, None)  # type: ignore[arg-type]
    returned: dict[str, str] = {}
    for number in range(5):
        status, _, body = post('{"usedBy": "before"}', f"before-{number}")
        assert status == 201
        returned[f"before-{number}"] = body["code"]

    engine.freeze()
    thaw = threading.Timer(FREEZE_SECONDS, engine.thaw)
    thaw.start()
    failed_keys = []
    try:
        for number in range(2):
            started = time.monotonic()
            status, headers, body = post('{"usedBy": "during"}', f"during-{number}")
            elapsed = time.monotonic() - started
            if status == 201:
                returned[f"during-{number}"] = body["code"]
                continue
            assert status == 503, body
            assert body["error"]["code"] == "store_unavailable"
            assert int(headers["Retry-After"]) >= 1
            assert elapsed < BOUND_SECONDS, f"a frozen engine held a request {elapsed:.1f} s; timeouts must bound it"
            failed_keys.append(f"during-{number}")
    finally:
        thaw.join()
    assert failed_keys, "the freeze caused no failure; the test proved nothing"

    # The client retries what failed, with the same keys: each gets one code, the one that may have landed
    # while the client had given up, never a second one.
    for key in failed_keys:
        status, _, body = post('{"usedBy": "during"}', key)
        assert status == 201, body
        returned[key] = body["code"]
    for number in range(5):
        status, _, body = post('{"usedBy": "after"}', f"after-{number}")
        assert status == 201
        returned[f"after-{number}"] = body["code"]

    codes = list(returned.values())
    assert len(set(codes)) == len(codes)

    async def recorded_codes(runtime: Container) -> set[str]:
        records = await issued_records(runtime.client, runtime.settings.table_name)
        return {item["code"]["S"] for item in records.values()}

    # Every returned code is recorded, and every recorded code was returned to someone: none orphaned.
    assert issuer.app.container.run(recorded_codes) == set(codes)
