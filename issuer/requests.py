"""Turn an HTTP request body into an `IssueRequest`, rejecting anything malformed with a clear message."""

from __future__ import annotations

import json
from typing import Any

from codepool.errors import InvalidRequestError, PayloadTooLargeError
from codepool.model import IssueRequest

MAX_BODY_BYTES = 16 * 1024
_STRING_FIELDS = {"pool": "pool", "usedBy": "used_by", "reference": "reference", "description": "description"}
_FIELDS = {*_STRING_FIELDS, "count"}
JSON_WHITESPACE = " \t\n\r"
"""What JSON reads as white space (RFC 8259). `str.strip()` also strips characters JSON does not (U+001C to U+001F,
U+0085, the Unicode spaces), so a body of one of them would pass for no body instead of malformed JSON."""


def parse_issue_body(body: str | None) -> IssueRequest:
    """No body, `""` and `"{}"` all mean: one code from the default pool. A string field that is `null` is left
    out (`issuer.openapi.NULL_IS_ABSENT`); a `null` body is not an object (the OpenAPI document says why)."""
    if body is None or not body.strip(JSON_WHITESPACE):
        return IssueRequest()
    if len(body.encode("utf-8", errors="surrogatepass")) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:
        # ValueError also covers integers past Python's digit limit (`{"count": 111...1}`, 4,301 digits or more).
        raise InvalidRequestError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidRequestError("request body must be a JSON object")
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        raise InvalidRequestError(f"unknown fields {unknown}; allowed: {sorted(_FIELDS)}")
    values: dict[str, Any] = {}
    for field, attribute in _STRING_FIELDS.items():
        value = document.get(field)
        if value is not None and not isinstance(value, str):
            raise InvalidRequestError(f"{field} must be a string")
        if value is not None:
            values[attribute] = value
    count = document.get("count", 1)
    if isinstance(count, float) and count.is_integer():
        # JSON has one number type: `2.0` is the number 2, as JSON Schema's `integer` (the OpenAPI document) reads it.
        count = int(count)
    if isinstance(count, bool) or not isinstance(count, int):
        raise InvalidRequestError("count must be an integer")
    values["count"] = count
    return IssueRequest(**values)
