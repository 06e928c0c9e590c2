"""Item keys of the single table. One definition, used by the adapter, the tools and the tests."""

from __future__ import annotations

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expiresAt"

CODE_PREFIX = "CODE#"
CODE_SORT_KEY = "CODE"
IDEMPOTENCY_SORT_KEY = "IDEMPOTENCY"


def slot_partition(pool: str, shard: int) -> str:
    """Available codes of one shard of a pool live under one partition key, sorted by code."""
    return f"POOL#{pool}#{shard}"


def slot_key(pool: str, shard: int, key: str) -> dict[str, dict[str, str]]:
    return {PARTITION_KEY: {"S": slot_partition(pool, shard)}, SORT_KEY: {"S": key}}


def code_key(key: str) -> dict[str, dict[str, str]]:
    """An issued code's record; its existence is what makes a code issued."""
    return {PARTITION_KEY: {"S": CODE_PREFIX + key}, SORT_KEY: {"S": CODE_SORT_KEY}}


def idempotency_key(key: str) -> dict[str, dict[str, str]]:
    return {PARTITION_KEY: {"S": f"IDEMPOTENCY#{key}"}, SORT_KEY: {"S": IDEMPOTENCY_SORT_KEY}}
