"""`unique-codes serve` end to end: a real HTTP server in a subprocess, on each embedded engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from codepool.local.engines import free_port

CONCURRENT_CLIENTS = 32
REQUESTS_PER_CLIENT = 8


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if http(f"{url}/pools")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    process.kill()
    process.wait()
    pytest.fail("serve did not answer within 120 s")


@pytest.fixture(params=["moto", "dynamodb-local"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    pools = tmp_path / "pools.toml"
    pools.write_text('[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 400\n')
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "TABLE_NAME", "POOLS_FILE"))}
    command = [
        sys.executable,
        "-m",
        "codepool.cli",
        "serve",
        "--port",
        str(port),
        "--engine",
        request.param,
        "--pools-file",
        str(pools),
    ]
    # A file, not a pipe: an unread pipe fills up and blocks the server's logging.
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(url, process, tmp_path / "serve.log")
    yield url
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("serve did not stop on SIGTERM")
    finally:
        log.close()


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
