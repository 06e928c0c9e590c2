"""DynamoDB's size rules, and the largest write one request can make, computed from the items the adapter builds.

Every input that reaches an item is bounded (metadata and idempotency keys in UTF-8 bytes, codes by
`MAX_CODE_LENGTH`, pool names by their pattern, `MAX_COUNT` codes a request), so the worst case is a number,
checked against DynamoDB's limits by `tests/unit/test_sizes.py` and written for real in the integration tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from codepool.config import MAX_SHARDS
from codepool.dynamodb.items import idempotency_item, record_item, slot_item
from codepool.formats import MAX_CODE_LENGTH
from codepool.model import (
    MAX_COUNT,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    MAX_REQUEST_ID_LENGTH,
    METADATA_LIMITS,
    Candidate,
    IssuedCode,
)
from codepool.repository import IdempotencyRecord

MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_TRANSACTION_ITEMS = 100
MAX_POOL_NAME_LENGTH = 63
"""`codepool.config.POOL_NAME_PATTERN` allows 1 to 63 characters."""
SCOPE_LENGTH = 33
"""A caller's scope in front of its Idempotency-Key: 32 hex digits and '#' (`codepool.issuing`)."""


def attribute_value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value, by DynamoDB's published rules (numbers: at most 21 bytes)."""
    ((kind, content),) = value.items()
    if kind == "S":
        return len(str(content).encode("utf-8"))
    if kind == "N":
        return min(21, len(str(content).lstrip("-").replace(".", "")) // 2 + 1)
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(attribute_value_size(element) + 1 for element in content)
    if kind == "M":
        return 3 + sum(len(name.encode()) + attribute_value_size(element) + 1 for name, element in content.items())
    if kind == "SS":
        return sum(len(element.encode()) for element in content)
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """An item's size: attribute names plus values, in bytes."""
    return sum(len(name.encode("utf-8")) + attribute_value_size(value) for name, value in item.items())


def transactional_write_units(size: int) -> int:
    """A transactional write costs two write units per started KB of the item."""
    return 2 * max(1, math.ceil(size / 1024))


@dataclass(frozen=True, slots=True)
class ClaimSize:
    items: int
    largest_item_bytes: int
    transaction_bytes: int
    write_units: int


def worst_case_claim() -> ClaimSize:
    """The largest claim the schema allows: `MAX_COUNT` of the longest codes, every metadata field at its byte
    limit in 4-byte characters, the longest request id and the longest scoped Idempotency-Key."""
    code = "C" * MAX_CODE_LENGTH
    pool = "p" * MAX_POOL_NAME_LENGTH
    metadata = {name: "\U0001f600" * (limit // 4) for name, limit in METADATA_LIMITS.items()}
    record = IssuedCode(
        code=code,
        pool=pool,
        issued_at="2026-12-01T00:00:00.000Z",
        metadata=metadata,
        request_id="r" * MAX_REQUEST_ID_LENGTH,
    )
    slot = slot_item(pool, Candidate(key=code, code=code, shard=MAX_SHARDS - 1), written_at=9_999_999_999_999)
    idempotency = IdempotencyRecord(
        key="k" * (SCOPE_LENGTH + MAX_IDEMPOTENCY_KEY_LENGTH),
        fingerprint="f" * 64,
        codes=[record] * MAX_COUNT,
        expires_at=9_999_999_999,
    )
    sizes = [item_size(slot), item_size(record_item(code, record))] * MAX_COUNT
    sizes.append(item_size(idempotency_item(idempotency)))
    return ClaimSize(
        items=len(sizes),
        largest_item_bytes=max(sizes),
        transaction_bytes=sum(sizes),
        write_units=sum(transactional_write_units(size) for size in sizes),
    )
