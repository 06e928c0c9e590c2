"""Request bodies: everything malformed or out of bounds is a 400 (or 413), never an exception the API misses."""

from __future__ import annotations

from typing import Any

import pytest

from codepool.config import DEFAULT_POOL
from codepool.errors import InvalidRequestError, PayloadTooLargeError
from codepool.issuing import validate_issue_request
from codepool.model import METADATA_LIMITS, IssueRequest
from issuer.requests import MAX_BODY_BYTES, parse_issue_body

POOLS = {DEFAULT_POOL.name: DEFAULT_POOL}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # 5,000 digits: past Python's int-conversion limit, json raises ValueError, not JSONDecodeError.
        ('{"count": ' + "1" * 5000 + "}", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[" * 10_000, "not valid JSON"),
        ("[1]", "JSON object"),
        ('{"count": "2"}', "count must be an integer"),
        ('{"count": true}', "count must be an integer"),
        ('{"count": 1.5}', "count must be an integer"),
        ('{"pool": 7}', "pool must be a string"),
        ('{"colour": "red"}', "unknown fields"),
        # Not JSON's white space, though `str.strip()` takes them: malformed JSON, not an empty body.
        ("\x1f", "not valid JSON"),
        ("\u00a0", "not valid JSON"),
        ("null", "JSON object"),
    ],
)
def test_malformed_bodies_are_invalid_requests(body: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        parse_issue_body(body)


@pytest.mark.parametrize("body", [None, "", " \t\r\n", "{}"])
def test_no_body_asks_for_one_default_code(body: str | None) -> None:
    assert parse_issue_body(body) == IssueRequest()


def test_a_whole_number_is_a_count_whatever_its_spelling() -> None:
    """JSON has one number type: `19.0` is 19, as JSON Schema's `integer` (the OpenAPI document) reads it."""
    assert parse_issue_body('{"count": 19.0}') == parse_issue_body('{"count": 19}') == IssueRequest(count=19)
    assert parse_issue_body('{"count": 1e1}').count == 10


def test_a_body_over_the_limit_is_too_large_counted_in_bytes() -> None:
    # 4,097 four-byte characters: 16,388 bytes, though only 4,097 characters.
    with pytest.raises(PayloadTooLargeError):
        parse_issue_body('{"description": "' + "\U0001f600" * 4097 + '"}')
    assert len(("\U0001f600" * 4097).encode()) > MAX_BODY_BYTES


@pytest.mark.parametrize("field", sorted(METADATA_LIMITS))
def test_metadata_limits_are_utf8_bytes(field: str) -> None:
    limit = METADATA_LIMITS[field]
    attribute = {"usedBy": "used_by"}.get(field, field)
    # The field is chosen at run time: `Any` values, or mypy matches them against `count: int` too.
    at_limit_fields: dict[str, Any] = {attribute: "\U0001f600" * (limit // 4)}
    at_limit = IssueRequest(**at_limit_fields)
    assert validate_issue_request(at_limit, POOLS, None) is DEFAULT_POOL
    over_limit_fields: dict[str, Any] = {attribute: "\U0001f600" * (limit // 4) + "x"}
    over = IssueRequest(**over_limit_fields)
    with pytest.raises(InvalidRequestError, match="bytes"):
        validate_issue_request(over, POOLS, None)


def test_lone_surrogates_are_invalid_not_a_crash() -> None:
    request = parse_issue_body('{"usedBy": "\\ud800"}')
    with pytest.raises(InvalidRequestError, match="surrogate"):
        validate_issue_request(request, POOLS, None)
    with pytest.raises(InvalidRequestError, match="surrogate"):
        validate_issue_request(IssueRequest(), POOLS, "\ud800")


def test_idempotency_key_limit_is_bytes() -> None:
    assert validate_issue_request(IssueRequest(), POOLS, "k" * 255) is DEFAULT_POOL
    with pytest.raises(InvalidRequestError, match="Idempotency-Key"):
        validate_issue_request(IssueRequest(), POOLS, "é" * 128)
