"""Run `unique-codes serve` in a subprocess for a test, and talk to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from localdev.engines import free_port

STARTUP_SECONDS = 120


def http(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@contextmanager
def serving(
    engine: str,
    pools_toml: str,
    folder: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    ready: bool = True,
) -> Iterator[str]:
    """The base URL of a `serve --engine ENGINE` on a free port with these pools; stopped with SIGTERM after.

    `args` are more `serve` options; `env` replaces this process's environment (`AWS_ENDPOINT_URL*`, `TABLE_NAME`
    and `POOLS_FILE` are dropped from either). With `ready` (the default) it waits until the pools are filled
    (`GET /pools` is 200), else only until the server answers at all (a `503 not_ready` counts). The server's
    output is in `folder / "serve.log"`.
    """
    pools = folder / "pools.toml"
    pools.write_text(pools_toml)
    port = free_port()
    base = os.environ if env is None else env
    environment = {k: v for k, v in base.items() if not k.startswith(("AWS_ENDPOINT_URL", "TABLE_NAME", "POOLS_FILE"))}
    # No scheduled refill during a test: the tests count what is available.
    command = [sys.executable, "-m", "localdev", "serve", "--port", str(port), "--engine", engine,
               "--pools-file", str(pools), "--refill-interval", "3600", *args]  # fmt: skip
    log_path = folder / "serve.log"
    # A file, not a pipe: an unread pipe fills up and blocks the server's logging.
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_serving(url, process, log_path, ready=ready)
            yield url
        finally:
            _stop(process)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path, *, ready: bool = True) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            status = http(f"{url}/pools")[0]
            if status == 200 or not ready:
                return
        except OSError:
            pass
        time.sleep(0.2)  # not listening yet, or answering 503 not_ready while it fills its pools
    pytest.fail(f"serve did not answer within {STARTUP_SECONDS} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("serve did not stop on SIGTERM")
