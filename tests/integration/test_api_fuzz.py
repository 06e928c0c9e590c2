"""Schemathesis generates requests from /openapi.json and sends them to `unique-codes serve`.

Whatever it sends, the answer is never a 5xx (except the documented 503), its status is one the document
declares, and its body matches the declared schema.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from codepool.local.engines import free_port
from tests.integration.test_serve import wait_until_serving

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    pools = folder / "pools.toml"
    pools.write_text(
        '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 3000\n\n'
        '[pools.tickets]\nalphabet = "numeric"\nlength = 6\nprefix = "T-"\npattern = "###-###"\ntarget = 500\n'
    )
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
        "dynamodb-local",
        "--pools-file",
        str(pools),
    ]
    log_path: Path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, process, log_path)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_an_undocumented_answer(fuzzed_url: str, mode: GenerationMode) -> None:
    # Driven by hand rather than by `schema.parametrize()`: schemathesis' pytest plugin does not run on pytest 9.
    api = schemathesis.openapi.from_url(f"{fuzzed_url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {"POST /codes", "POST /", "GET /codes/{code}", "GET /pools", "GET /pools/{pool}"} <= {
        operation.label for operation in operations
    }

    no_invalid_input = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=fuzzed_url, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Negative mode only: nothing about this operation can be made invalid (e.g. GET /pools takes no
            # input, any string is a pool name to look up).
            assert mode is GenerationMode.NEGATIVE, operation.label
            no_invalid_input.append(operation.label)
    assert "POST /codes" not in no_invalid_input
