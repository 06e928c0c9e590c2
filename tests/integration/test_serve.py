"""`unique-codes serve` end to end: a real HTTP server in a subprocess, on each embedded engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.serving import http, serving

CONCURRENT_CLIENTS = 32
REQUESTS_PER_CLIENT = 8


@pytest.fixture(params=["moto", "dynamodb-local"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with serving(
        request.param, '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 400\n', tmp_path
    ) as url:
        yield url


def test_post_codes_then_get_the_record(served: str) -> None:
    status, headers, body = http(f"{served}/codes", "POST")
    assert status == 201
    assert headers["Content-Type"] == "application/json"
    status, _, record = http(f"{served}/codes/{body['code'].lower()}")
    assert status == 200
    assert record == body


def test_concurrent_requests_never_get_the_same_code(served: str) -> None:
    def client(number: int) -> list[str]:
        codes = []
        for sequence in range(REQUESTS_PER_CLIENT):
            payload = json.dumps({"usedBy": f"client-{number}", "reference": str(sequence)}).encode()
            status, _, body = http(f"{served}/codes", "POST", payload)
            assert status == 201, body
            codes.append(body["code"])
        return codes

    with ThreadPoolExecutor(max_workers=CONCURRENT_CLIENTS) as pool:
        batches = list(pool.map(client, range(CONCURRENT_CLIENTS)))
    codes = [code for batch in batches for code in batch]
    assert len(codes) == CONCURRENT_CLIENTS * REQUESTS_PER_CLIENT
    assert len(set(codes)) == len(codes)
    status, _, pool_state = http(f"{served}/pools/default")
    assert status == 200
    assert pool_state["available"] == 400 - len(codes)


def test_errors_cross_the_local_server_intact(served: str) -> None:
    status, _, body = http(f"{served}/codes", "POST", b'{"count": 0}')
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    status, _, body = http(f"{served}/nowhere")
    assert (status, body["error"]["code"]) == (404, "route_not_found")
