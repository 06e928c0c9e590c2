"""The OpenAPI document and the code agree, on the in-memory fake: every answer carries only fields the document
describes, with their types; the request bodies the document admits are accepted and those it refuses are refused.

The same contract is checked end to end by tooling a user would run (`tests/integration/test_api_contract.py`:
the schemathesis CLI and a generated client against `unique-codes serve`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import sys
import unicodedata
from typing import Any

import jsonschema_rs  # comes with schemathesis
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET
from schemathesis.schemas import APIOperation

import issuer.app
from codepool.config import DEFAULT_POOL, PoolConfig
from codepool.errors import CodeNotFoundError, InvalidRequestError, PayloadTooLargeError, PoolNotFoundError
from codepool.formats import CodeFormat
from codepool.issuing import validate_issue_request
from codepool.model import METADATA_LIMITS
from codepool.queries import lookup_code
from codepool.refilling import refill_pool
from issuer.openapi import openapi_document, typed_code_pattern
from issuer.requests import parse_issue_body
from tests.support.events import call, rest
from tests.support.fake_issuer import FakeContainerHolder
from tests.support.fakes import InMemoryRepository

PINS = PoolConfig(
    name="pins",
    # Longer than the default pool's codes, so a wrong check character is `400 invalid_code`, not another look-up.
    format=CodeFormat(alphabet="numeric", length=5, prefix="PIN-", pattern="###-###", check="damm"),
    target=100,
    low_watermark=20,
)
EMPTY = PoolConfig(
    name="empty", format=CodeFormat(alphabet="base62", length=6, postfix=".x"), target=10, low_watermark=2
)
POOLS = {pool.name: pool for pool in (DEFAULT_POOL, PINS, EMPTY)}
EXAMPLES = 400


def strict(document: dict[str, Any]) -> dict[str, Any]:
    """The document with every object schema closed (`additionalProperties: false`): an answer with a field the
    document does not describe fails it. The document itself leaves answers open, for fields added later."""

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" or "properties" in node:
                node["additionalProperties"] = False
            for child in node.values():
                close(child)
        elif isinstance(node, list):
            for child in node:
                close(child)

    closed = copy.deepcopy(document)
    close(closed["components"]["schemas"])
    for item in closed["paths"].values():
        for operation in item.values():
            close(operation["responses"])
    return closed


def assert_described(document: dict[str, Any], method: str, path: str, answer: tuple[int, dict[str, str], Any]) -> None:
    """`answer` (status, headers, body) is one the operation declares, and its body matches the closed schema."""
    status, headers, body = answer
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which it does not declare: {body}"
    assert headers["Content-Type"] == "application/json"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.validator_for({**document, **schema})
    errors = [f"{error.instance_path}: {error.message}" for error in validator.iter_errors(body)]
    assert not errors, f"{method} {path} {status} {json.dumps(body)}: {errors}"


@pytest.fixture
def fake_issuer(monkeypatch: pytest.MonkeyPatch) -> InMemoryRepository:
    repository = InMemoryRepository()
    asyncio.run(refill_pool(repository, DEFAULT_POOL, 60))
    asyncio.run(refill_pool(repository, PINS, 60))
    monkeypatch.setattr(issuer.app, "container", FakeContainerHolder(repository, POOLS))
    return repository


def test_every_answer_carries_only_described_fields_of_the_described_types(fake_issuer: InMemoryRepository) -> None:
    document = strict(openapi_document())
    one = call(rest("POST", "/codes", '{"pool": "pins", "usedBy": "alice", "reference": "r-1", "description": "d"}'))
    key = {"Idempotency-Key": "key-1"}
    answers = [
        ("POST", "/codes", one),
        ("POST", "/codes", call(rest("POST", "/codes", '{"count": 3}', key))),
        ("POST", "/codes", call(rest("POST", "/codes", '{"count": 3}', key))),  # the replay
        ("POST", "/", call(rest("POST", "/", "{}"))),
        ("GET", "/codes/{code}", call(rest("GET", f"/codes/{one[2]['code'].lower()}"))),
        ("GET", "/pools", call(rest("GET", "/pools"))),
        ("GET", "/pools/{pool}", call(rest("GET", "/pools/pins"))),
        ("GET", "/pools/{pool}", call(rest("GET", "/pools/empty"))),
        # Errors: 400, 404 (pool, code), 413, 422, 503.
        ("POST", "/codes", call(rest("POST", "/codes", '{"count": 26}'))),
        ("POST", "/codes", call(rest("POST", "/codes", '{"pool": "nope"}'))),
        ("POST", "/codes", call(rest("POST", "/codes", '{"description": "' + "x" * 17_000 + '"}'))),
        ("POST", "/codes", call(rest("POST", "/codes", '{"count": 2}', key))),
        ("POST", "/codes", call(rest("POST", "/codes", '{"pool": "empty"}'))),
        ("GET", "/codes/{code}", call(rest("GET", "/codes/PIN-000-001"))),
        ("GET", "/codes/{code}", call(rest("GET", "/codes/ZZZZ2222"))),
        ("GET", "/pools/{pool}", call(rest("GET", "/pools/nope"))),
    ]
    assert [answer[0] for _, _, answer in answers] == [
        201, 201, 201, 201, 200, 200, 200, 200, 400, 404, 413, 422, 503, 400, 404, 404
    ]  # fmt: skip
    assert answers[2][2][1]["Idempotent-Replayed"] == "true"
    for method, path, answer in answers:
        assert_described(document, method, path, answer)


def test_the_closed_document_refuses_a_field_it_does_not_describe(fake_issuer: InMemoryRepository) -> None:
    """The control: `assert_described` does see an undescribed field."""
    document = strict(openapi_document())
    status, headers, body = call(rest("GET", "/pools/pins"))
    with pytest.raises(AssertionError, match="'undescribed' was unexpected"):
        assert_described(document, "GET", "/pools/{pool}", (status, headers, {**body, "undescribed": 1}))


def issue_operation() -> APIOperation[Any, Any, Any, Any]:
    operation = schemathesis.openapi.from_dict(openapi_document())["/codes"]["POST"]
    assert isinstance(operation, APIOperation)
    return operation


def body_text(body: Any) -> str | None:
    """The body as the handler gets it: none (schemathesis' `NOT_SET`), JSON text (`None` is `null`), or a
    generated `bytes` body as it is sent."""
    if body is NOT_SET:
        return None
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="surrogateescape")
    return json.dumps(body)


def over_byte_limit(body: Any) -> bool:
    """A metadata text within `maxLength` characters but over its limit in UTF-8 bytes: the one rule of the
    request the document can only state in words (JSON Schema counts characters)."""
    return isinstance(body, dict) and any(
        isinstance(body.get(name), str) and len(body[name].encode("utf-8", "surrogatepass")) > limit
        for name, limit in METADATA_LIMITS.items()
    )


@given(case=issue_operation().as_strategy(generation_mode=GenerationMode.POSITIVE))
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_body_the_document_admits_is_accepted(case: schemathesis.Case[Any]) -> None:
    key = case.headers.get("Idempotency-Key") if case.headers else None
    refused: Exception | None = None
    try:
        validate_issue_request(parse_issue_body(body_text(case.body)), POOLS, key)
    except PoolNotFoundError:
        pass  # any string is a pool's name to the document; which pools exist is configuration
    except (InvalidRequestError, PayloadTooLargeError) as error:
        refused = error
    assert refused is None or over_byte_limit(case.body), f"{case.body!r} was refused: {refused}"


@given(case=issue_operation().as_strategy(generation_mode=GenerationMode.NEGATIVE))
@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_body_the_document_refuses_is_refused(case: schemathesis.Case[Any]) -> None:
    assert case.meta is not None
    # Schemathesis falls back to a valid request when it found nothing to break (and says so in its meta).
    assume(case.meta.generation.mode is GenerationMode.NEGATIVE)
    key = case.headers.get("Idempotency-Key") if case.headers else None
    # No pools: a valid request would fail on its pool (404); this one must fail before, on what is broken.
    with pytest.raises((InvalidRequestError, PayloadTooLargeError)):
        validate_issue_request(parse_issue_body(body_text(case.body)), {}, key)


def test_the_documented_readings_of_numbers_and_nulls() -> None:
    """`count: 2.0` is the JSON number 2 (JSON Schema's `integer` admits it); `null` leaves a string field out;
    a `null` body is not an object."""
    assert parse_issue_body('{"count": 19.0}').count == 19
    assert parse_issue_body('{"count": 2.0}').fingerprint() == parse_issue_body('{"count": 2}').fingerprint()
    nulls = parse_issue_body('{"pool": null, "usedBy": null, "reference": null, "description": null}')
    assert nulls == parse_issue_body("{}")
    body = openapi_document()["components"]["schemas"]["IssueRequest"]
    assert all("null" in body["properties"][name]["type"] for name in ("pool", "usedBy", "reference", "description"))
    assert body["properties"]["count"]["type"] == "integer"
    with pytest.raises(InvalidRequestError, match="JSON object"):
        parse_issue_body("null")


def test_the_typed_code_pattern_is_what_a_look_up_accepts() -> None:
    """`GET /codes/{code}`'s pattern admits a text exactly when the look-up reads a code in it, for every
    separator, space, control, format and punctuation character."""
    pattern = re.compile(typed_code_pattern())
    characters = [
        chr(point)
        for point in range(sys.maxunicode + 1)
        if unicodedata.category(chr(point)) in {"Zs", "Zl", "Zp", "Cc", "Cf", "Pd", "Pc", "Po"}
    ]

    async def accepted(text: str) -> bool:
        try:
            await lookup_code(InMemoryRepository(), {}, text)
        except CodeNotFoundError:
            return True  # read as a code (no pool has it)
        except InvalidRequestError:
            return False
        raise AssertionError(f"{text!r} found in an empty table")

    async def disagreements() -> list[str]:
        texts = [*characters, "a", " a-", "--"]
        return [text for text in texts if (await accepted(text)) != bool(pattern.search(text))]

    assert not asyncio.run(disagreements())
