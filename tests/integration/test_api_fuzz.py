"""Schemathesis generates requests from /openapi.json and sends them to `unique-codes serve`.

Whatever it sends, the answer is never a 5xx (except the documented 503), its status is one the document
declares, and its body matches the declared schema.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.serving import serving

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


Operation = APIOperation[Any, Any, Any, Any]


def operation_of(result: Ok[Operation] | Err[InvalidSchema]) -> Operation:
    """The operation, or the schema error that kept schemathesis from reading it."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


@pytest.fixture(scope="module")
def fuzzed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pools = (
        '[pools.default]\nalphabet = "unambiguous"\nlength = 8\ntarget = 3000\n\n'
        '[pools.tickets]\nalphabet = "numeric"\nlength = 6\nprefix = "T-"\npattern = "###-###"\ntarget = 500\n'
    )
    with serving("dynamodb-local", pools, tmp_path_factory.mktemp("fuzz")) as url:
        yield url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_an_undocumented_answer(fuzzed_url: str, mode: GenerationMode) -> None:
    # Driven by hand rather than by `schema.parametrize()`: schemathesis' pytest plugin does not run on pytest 9.
    api = schemathesis.openapi.from_url(f"{fuzzed_url}/openapi.json")
    operations = [operation_of(result) for result in api.get_all_operations()]
    assert {"POST /codes", "POST /", "GET /codes/{code}", "GET /pools", "GET /pools/{pool}"} <= {
        operation.label for operation in operations
    }

    no_invalid_input = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case[Operation]) -> None:
            case.call_and_validate(base_url=fuzzed_url, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            # Negative mode only: nothing about this operation can be made invalid (e.g. GET /pools takes no
            # input, any string is a pool name to look up).
            assert mode is GenerationMode.NEGATIVE, operation.label
            no_invalid_input.append(operation.label)
    assert "POST /codes" not in no_invalid_input
