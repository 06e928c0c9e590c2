"""Item keys of the single table. One definition, used by the adapter, the tools, the tests and the benchmarks.

Plain Python with no imports, so tools that must not load aioboto3 (the sync contender, the fill sweep's
raw writer) can use it too.

    pk                      sk            what
    POOL#<pool>#<shard>     <code key>    an available code (a "slot"); blind overwrites are harmless
    CODE#<code key>         CODE          an issued code and its metadata; its existence means "issued"
    IDEMPOTENCY#<key>       IDEMPOTENCY   the response of an Idempotency-Key request, expiring by TTL
    POOL#<pool>#ledger      LEDGER        the pool's ledger: codes written and imported, snapshots, the sweep

The ledger sits under the pool's own prefix (no shard is named `ledger`), so the refiller's POOL# permissions
cover it and it never counts as a slot (slots are queried by `POOL#<pool>#<shard>`).
"""

from __future__ import annotations

PARTITION_KEY = "pk"
SORT_KEY = "sk"
TTL_ATTRIBUTE = "expiresAt"

SLOT_PREFIX = "POOL#"
CODE_PREFIX = "CODE#"
CODE_SORT_KEY = "CODE"
IDEMPOTENCY_PREFIX = "IDEMPOTENCY#"
IDEMPOTENCY_SORT_KEY = "IDEMPOTENCY"
LEDGER_SORT_KEY = "LEDGER"

Key = dict[str, dict[str, str]]


def slot_partition(pool: str, shard: int) -> str:
    """Available codes of one shard of a pool live under one partition key, sorted by code."""
    return f"{SLOT_PREFIX}{pool}#{shard}"


def slot_key(pool: str, shard: int, key: str) -> Key:
    return {PARTITION_KEY: {"S": slot_partition(pool, shard)}, SORT_KEY: {"S": key}}


def code_key(key: str) -> Key:
    """An issued code's record; its existence is what makes a code issued."""
    return {PARTITION_KEY: {"S": CODE_PREFIX + key}, SORT_KEY: {"S": CODE_SORT_KEY}}


def ledger_key(pool: str) -> Key:
    return {PARTITION_KEY: {"S": f"{SLOT_PREFIX}{pool}#ledger"}, SORT_KEY: {"S": LEDGER_SORT_KEY}}


def idempotency_key(key: str) -> Key:
    return {PARTITION_KEY: {"S": IDEMPOTENCY_PREFIX + key}, SORT_KEY: {"S": IDEMPOTENCY_SORT_KEY}}


def is_code_record(partition: str) -> bool:
    return partition.startswith(CODE_PREFIX)


def is_slot(partition: str) -> bool:
    return partition.startswith(SLOT_PREFIX)


def code_of_record(partition: str) -> str:
    """`CODE#<key>` -> `<key>`, the canonical code an issued record stands for."""
    return partition.removeprefix(CODE_PREFIX)
