"""Schemathesis hooks for the contract run (`schemathesis.toml` beside this file loads them).

One rule of the API cannot be written in JSON Schema: the metadata limits count UTF-8 bytes, and `maxLength`
counts characters. A text of 200 characters with multi-byte ones is within `"maxLength": 256` and over 256 bytes,
so the API refuses it (`400`, "usedBy is longer than 256 bytes of UTF-8"), as its description says. That refusal,
and only that one, is not a failure of the contract.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from codepool.model import METADATA_LIMITS


def over_byte_limit(body: Any) -> dict[str, int]:
    """The metadata fields of a request body that are longer in UTF-8 bytes than their limit, with that limit."""
    if not isinstance(body, dict):
        return {}
    return {
        name: limit
        for name, limit in METADATA_LIMITS.items()
        if isinstance(body.get(name), str) and len(body[name].encode("utf-8", "surrogatepass")) > limit
    }


def refused_for_bytes(failure: object, status: int, body: Any, answer: Any) -> bool:
    """Whether a schema-valid request was refused for the byte limit, as the document says it may be."""
    if not isinstance(failure, RejectedPositiveData) or status != 400 or not isinstance(answer, dict):
        return False
    error = answer.get("error")
    message = error.get("message", "") if isinstance(error, dict) else ""
    expected = {f"{name} is longer than {limit} bytes of UTF-8" for name, limit in over_byte_limit(body).items()}
    return message in expected


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but a refusal for the byte limits (False drops it)."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    return not refused_for_bytes(failure, response.status_code, case.body, answer)
