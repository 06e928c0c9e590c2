"""DynamoDB Local stops (SIGTERM) and restarts on the same data while requests keep coming."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import issuer.app
import refiller.app
from codepool.local.engines import DynamoDBLocal
from tests.conftest import EVENTS
from tests.reliability.own_engine import own_engine_with_handlers

TIMEOUTS = {"DYNAMODB_CONNECT_TIMEOUT": "0.5", "DYNAMODB_READ_TIMEOUT": "1", "DYNAMODB_MAX_ATTEMPTS": "2"}


@pytest.fixture
def restartable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoDBLocal]:
    yield from own_engine_with_handlers(monkeypatch, TIMEOUTS, db_path=tmp_path)


def post(key: str) -> tuple[int, Any]:
    event = json.loads((EVENTS / "apigateway-aws-proxy.json").read_text())
    event.update(path="/codes", body='{"reference": "restart"}')
    event["headers"]["Idempotency-Key"] = key
    response = issuer.app.lambda_handler(event, None)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


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
        event = json.loads((EVENTS / "apigateway-aws-proxy.json").read_text())
        event.update(httpMethod="GET", path=f"/codes/{code}", body=None)
        found = issuer.app.lambda_handler(event, None)  # type: ignore[arg-type]
        assert found["statusCode"] == 200
        assert json.loads(found["body"])["reference"] == "restart"
