"""DynamoDB Local stops (SIGTERM) and restarts on the same data while requests keep coming."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refiller.app
from localdev.engines import DynamoDBLocal
from tests.reliability.own_engine import own_engine_with_handlers
from tests.support.events import call, rest

TIMEOUTS = {"DYNAMODB_CONNECT_TIMEOUT": "0.5", "DYNAMODB_READ_TIMEOUT": "1", "DYNAMODB_MAX_ATTEMPTS": "2"}


@pytest.fixture
def restartable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBLocal]:
    yield from own_engine_with_handlers(monkeypatch, TIMEOUTS, db_path=tmp_path)


def post(key: str) -> tuple[int, Any]:
    status, _, body = call(rest("POST", "/codes", '{"reference": "restart"}', {"Idempotency-Key": key}))
    return status, body


def test_codes_survive_a_restart_and_none_is_issued_twice(restartable: DynamoDBLocal) -> None:
    refiller.app.lambda_handler({"pool": "default", "target": 100}, None)  # type: ignore[arg-type]
    returned = {f"k{n}": post(f"k{n}")[1]["code"] for n in range(10)}

    restartable.stop()
    status, body = post("k-down")
    assert status == 503
    assert body["error"]["code"] == "store_unavailable"
    restartable.start()

    status, body = post("k-down")  # the client's retry, same key
    assert status == 201
    returned["k-down"] = body["code"]
    for n in range(10):
        assert post(f"k{n}")[1]["code"] == returned[f"k{n}"], "a replay after the restart returned another code"
    returned.update({f"after{n}": post(f"after{n}")[1]["code"] for n in range(10)})
    codes = list(returned.values())
    assert len(set(codes)) == len(codes) == 21
    for code in codes:
        status, _, found = call(rest("GET", f"/codes/{code}"))
        assert status == 200
        assert found["reference"] == "restart"
