"""The items a claim writes and reads back, built from the domain's values (plain Python, cheap to import).

Shared by the repository and by `codepool.dynamodb.sizes`, which bounds them.
"""

from __future__ import annotations

import json
from typing import Any

from codepool.dynamodb.keys import TTL_ATTRIBUTE, code_key, idempotency_key, slot_key
from codepool.model import Candidate, IssuedCode, PoolLedger, SweepState
from codepool.repository import IdempotencyRecord

Item = dict[str, Any]
WRITTEN_AT = "at"


def slot_item(pool: str, candidate: Candidate, written_at: int = 0) -> Item:
    """An available code: keyed by its canonical form in its shard, with its display form and when it was written
    (epoch ms: a claim that finds its code issued later than that knows the slot was written again by a retry)."""
    return {
        **slot_key(pool, candidate.shard, candidate.key),
        "code": {"S": candidate.code},
        WRITTEN_AT: {"N": str(written_at)},
    }


def record_item(key: str, record: IssuedCode) -> Item:
    item: Item = {
        **code_key(key),
        "code": {"S": record.code},
        "pool": {"S": record.pool},
        "issuedAt": {"S": record.issued_at},
    }
    for name, value in record.metadata.items():
        item[name] = {"S": value}
    if record.request_id:
        item["requestId"] = {"S": record.request_id}
    return item


def record_from_item(item: Item) -> IssuedCode:
    return IssuedCode.from_json({name: value["S"] for name, value in item.items() if "S" in value})


def idempotency_item(record: IdempotencyRecord) -> Item:
    """The codes of one request share pool, time, metadata and request id: stored once, beside the list of
    codes, so the item stays small (`codepool.dynamodb.sizes` bounds it)."""
    first = record.codes[0]
    item: Item = {
        **idempotency_key(record.key),
        "fingerprint": {"S": record.fingerprint},
        TTL_ATTRIBUTE: {"N": str(record.expires_at)},
        "pool": {"S": first.pool},
        "issuedAt": {"S": first.issued_at},
        "codes": {"L": [{"S": code.code} for code in record.codes]},
    }
    for name, value in first.metadata.items():
        item[name] = {"S": value}
    if first.request_id:
        item["requestId"] = {"S": first.request_id}
    return item


def idempotency_from_item(key: str, item: Item) -> IdempotencyRecord:
    codes = item["codes"]
    if "S" in codes:
        # Written before 0.2 (a JSON list of whole records); such records expire within a day of an upgrade.
        issued = [IssuedCode.from_json(code) for code in json.loads(codes["S"])]
    else:
        shared = {name: value["S"] for name, value in item.items() if "S" in value}
        issued = [IssuedCode.from_json({**shared, "code": code["S"]}) for code in codes["L"]]
    return IdempotencyRecord(
        key=key,
        fingerprint=item["fingerprint"]["S"],
        codes=issued,
        expires_at=int(item[TTL_ATTRIBUTE]["N"]),
    )


def ledger_from_item(item: Item | None) -> PoolLedger:
    if item is None:
        return PoolLedger()

    def number(name: str) -> int:
        return int(item[name]["N"]) if name in item else 0

    snapshots = tuple(
        (float(pair["L"][0]["N"]), int(pair["L"][1]["N"])) for pair in item.get("snapshots", {}).get("L", [])
    )
    sweep = None
    if "sweepStep" in item:
        sweep = SweepState(start=number("sweepStart"), step=number("sweepStep"), cursor=number("sweepCursor"))
    return PoolLedger(
        written=number("written"),
        imported=number("imported"),
        stale=number("stale"),
        snapshots=snapshots,
        sweep=sweep,
    )
