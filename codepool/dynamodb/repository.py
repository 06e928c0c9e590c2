"""`CodeRepository` on DynamoDB, through one long-lived aiobotocore client (data model A, see README).

The items and their keys are drawn in `codepool.dynamodb.keys`. Every method sends its requests one after
another: how many run at once is the caller's choice (the refill service owns that number).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from codepool.dynamodb.errors import store_errors
from codepool.dynamodb.keys import (
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    code_key,
    code_of_record,
    idempotency_key,
    is_code_record,
    slot_key,
    slot_partition,
)
from codepool.errors import RefillError
from codepool.model import Candidate, IssuedCode
from codepool.repository import ClaimOutcome, IdempotencyRecord, WriteReport

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100
MAX_BATCH_ATTEMPTS = 10
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0

Item = dict[str, Any]

# The slot must still exist: whoever deletes it first owns the code, and a concurrent claimer of the same
# slot has its whole transaction cancelled instead of issuing the code a second time.
SLOT_STILL_AVAILABLE = "attribute_exists(pk)"
# The code must never have been issued: closes the race with a refill that re-added a slot for a code
# claimed meanwhile, and with another pool whose format can produce the same code.
CODE_NEVER_ISSUED = "attribute_not_exists(pk)"
# The key is new, or its previous use has expired (TTL deletes lazily, so an expired record may linger).
IDEMPOTENCY_KEY_FREE = "attribute_not_exists(pk) OR #expires < :now"


class DynamoDBRepository:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    async def find_candidates(self, pool: str, shard: int, start: str, limit: int) -> list[Candidate]:
        partition = {":pk": {"S": slot_partition(pool, shard)}, ":start": {"S": start}}
        found = await self._query_slots(shard, "pk = :pk AND sk >= :start", partition, limit)
        if len(found) < limit:
            found += await self._query_slots(shard, "pk = :pk AND sk < :start", partition, limit - len(found))
        return found

    async def _query_slots(self, shard: int, condition: str, values: Item, limit: int) -> list[Candidate]:
        with store_errors("Query"):
            response = await self._client.query(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ProjectionExpression="sk, code",
                Limit=limit,
            )
        return [Candidate(key=item[SORT_KEY]["S"], code=item["code"]["S"], shard=shard) for item in response["Items"]]

    async def claim(
        self,
        pool: str,
        candidates: Sequence[Candidate],
        records: Sequence[IssuedCode],
        idempotency: IdempotencyRecord | None,
        now: int,
    ) -> ClaimOutcome:
        actions: list[Any] = []
        for candidate, record in zip(candidates, records, strict=True):
            actions.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": slot_key(pool, candidate.shard, candidate.key),
                        "ConditionExpression": SLOT_STILL_AVAILABLE,
                    }
                }
            )
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _record_item(candidate.key, record),
                        "ConditionExpression": CODE_NEVER_ISSUED,
                    }
                }
            )
        if idempotency is not None:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _idempotency_item(idempotency),
                        "ConditionExpression": IDEMPOTENCY_KEY_FREE,
                        "ExpressionAttributeNames": {"#expires": TTL_ATTRIBUTE},
                        "ExpressionAttributeValues": {":now": {"N": str(now)}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        try:
            with store_errors("TransactWriteItems"):
                # The token makes the SDK's own retries of this exact write idempotent: a retry after a lost
                # response succeeds instead of failing on the conditions the first attempt already satisfied.
                await self._client.transact_write_items(TransactItems=actions, ClientRequestToken=uuid.uuid4().hex)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            return _cancelled_outcome(candidates, exc.response.get("CancellationReasons", []), idempotency)
        return ClaimOutcome(issued=list(records))

    async def remove_slot(self, pool: str, candidate: Candidate) -> None:
        with store_errors("DeleteItem"):
            await self._client.delete_item(TableName=self._table, Key=slot_key(pool, candidate.shard, candidate.key))

    async def existing_among(
        self, pool: str, candidates: Sequence[Candidate], *, check_available: bool
    ) -> tuple[set[str], set[str]]:
        keys: list[Item] = [code_key(c.key) for c in candidates]
        if check_available:
            keys += [slot_key(pool, c.shard, c.key) for c in candidates]
        issued: set[str] = set()
        available: set[str] = set()
        for start in range(0, len(keys), BATCH_GET_SIZE):
            for item in await self._existing(keys[start : start + BATCH_GET_SIZE]):
                partition, sort = item[PARTITION_KEY]["S"], item[SORT_KEY]["S"]
                if is_code_record(partition):
                    issued.add(code_of_record(partition))
                else:
                    available.add(sort)
        return issued, available

    async def _existing(self, keys: Sequence[Item]) -> list[Item]:
        request: Item = {self._table: {"Keys": list(keys), "ProjectionExpression": "pk, sk"}}
        existing: list[Item] = []
        for attempt in range(MAX_BATCH_ATTEMPTS):
            with store_errors("BatchGetItem"):
                response = await self._client.batch_get_item(RequestItems=request)
            existing.extend(response["Responses"][self._table])
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return existing
            await _backoff(attempt)
        raise RefillError("BatchGetItem kept returning UnprocessedKeys", written=0)

    async def add_available(self, pool: str, candidates: Sequence[Candidate]) -> WriteReport:
        total = WriteReport()
        for start in range(0, len(candidates), BATCH_WRITE_SIZE):
            try:
                report = await self._write_slots(pool, candidates[start : start + BATCH_WRITE_SIZE])
            except RefillError as exc:
                raise RefillError(
                    "BatchWriteItem kept returning UnprocessedItems", total.written + exc.written
                ) from exc
            total.written += report.written
            total.requests += report.requests
            total.unprocessed_retries += report.unprocessed_retries
        return total

    async def _write_slots(self, pool: str, chunk: Sequence[Candidate]) -> WriteReport:
        puts = [{"PutRequest": {"Item": {**slot_key(pool, c.shard, c.key), "code": {"S": c.code}}}} for c in chunk]
        request: Item = {self._table: puts}
        report = WriteReport()
        for attempt in range(MAX_BATCH_ATTEMPTS):
            with store_errors("BatchWriteItem"):
                response = await self._client.batch_write_item(RequestItems=request)
            report.requests += 1
            request = dict(response.get("UnprocessedItems") or {})
            if not request:
                report.written = len(chunk)
                return report
            report.unprocessed_retries += 1
            await _backoff(attempt)
        unwritten = len(request.get(self._table, []))
        raise RefillError("BatchWriteItem kept returning UnprocessedItems", written=len(chunk) - unwritten)

    async def count_available(self, pool: str, shard: int) -> int:
        total = 0
        arguments: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": slot_partition(pool, shard)}},
            "Select": "COUNT",
        }
        while True:
            with store_errors("Query"):
                response = await self._client.query(**arguments)
            total += response["Count"]
            if "LastEvaluatedKey" not in response:
                return total
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def get_issued(self, keys: Sequence[str]) -> IssuedCode | None:
        unique = list(dict.fromkeys(keys))
        request = {self._table: {"Keys": [code_key(key) for key in unique], "ConsistentRead": True}}
        with store_errors("BatchGetItem"):
            response = await self._client.batch_get_item(RequestItems=request)  # type: ignore[arg-type]
        by_key = {code_of_record(item[PARTITION_KEY]["S"]): item for item in response["Responses"][self._table]}
        for key in unique:
            if key in by_key:
                return _record_from_item(by_key[key])
        return None

    async def get_idempotency(self, key: str, now: int) -> IdempotencyRecord | None:
        with store_errors("GetItem"):
            response = await self._client.get_item(TableName=self._table, Key=idempotency_key(key), ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        record = _idempotency_from_item(key, item)
        return record if record.expires_at >= now else None


def _cancelled_outcome(
    candidates: Sequence[Candidate], reasons: Sequence[Any], idempotency: IdempotencyRecord | None
) -> ClaimOutcome:
    """Read the per-action cancellation reasons (same order as the actions) into a `ClaimOutcome`."""
    outcome = ClaimOutcome()
    codes = [str(reason.get("Code", "None")) for reason in reasons]
    if idempotency is not None and len(codes) == 2 * len(candidates) + 1:
        last = reasons[-1]
        if codes[-1] == "ConditionalCheckFailed" and "Item" in last:
            outcome.replayed = _idempotency_from_item(idempotency.key, last["Item"])
            return outcome
    for index, candidate in enumerate(candidates):
        slot_reason = codes[2 * index] if 2 * index < len(codes) else "None"
        record_reason = codes[2 * index + 1] if 2 * index + 1 < len(codes) else "None"
        if record_reason == "ConditionalCheckFailed" and slot_reason == "None":
            outcome.stale.append(candidate)
        elif slot_reason != "None" or record_reason != "None":
            outcome.lost.append(candidate)
    if not outcome.lost and not outcome.stale:
        # The engine gave no usable reason (or only for the idempotency record, without its item): treat
        # every candidate as lost so the caller draws fresh ones.
        outcome.lost = list(candidates)
    return outcome


def _record_item(key: str, record: IssuedCode) -> Item:
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


def _record_from_item(item: Item) -> IssuedCode:
    return IssuedCode.from_json({name: value["S"] for name, value in item.items() if "S" in value})


def _idempotency_item(record: IdempotencyRecord) -> Item:
    return {
        **idempotency_key(record.key),
        "fingerprint": {"S": record.fingerprint},
        "codes": {"S": json.dumps([code.to_json() for code in record.codes], separators=(",", ":"))},
        TTL_ATTRIBUTE: {"N": str(record.expires_at)},
    }


def _idempotency_from_item(key: str, item: Item) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=key,
        fingerprint=item["fingerprint"]["S"],
        codes=[IssuedCode.from_json(code) for code in json.loads(item["codes"]["S"])],
        expires_at=int(item[TTL_ATTRIBUTE]["N"]),
    )


_JITTER = secrets.SystemRandom()
"""OS entropy, not `random`'s state, which SnapStart would clone into every restored container."""


async def _backoff(attempt: int) -> None:
    # Full jitter: concurrent refills that were throttled together do not retry together.
    await asyncio.sleep(_JITTER.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
