"""`CodeRepository` on DynamoDB, through one long-lived aiobotocore client (data model A, see README).

The items and their keys are drawn in `codepool.dynamodb.keys`. Every method sends its requests one after
another: how many run at once is the caller's choice (the refill service owns that number).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from codepool.backoff import full_jitter
from codepool.dynamodb.errors import error_code, store_errors
from codepool.dynamodb.items import (
    WRITTEN_AT,
    idempotency_from_item,
    idempotency_item,
    ledger_from_item,
    record_from_item,
    record_item,
    slot_item,
)
from codepool.dynamodb.keys import (
    PARTITION_KEY,
    SORT_KEY,
    TTL_ATTRIBUTE,
    code_key,
    code_of_record,
    idempotency_key,
    is_code_record,
    ledger_key,
    slot_key,
    slot_partition,
)
from codepool.errors import RefillError, StoreUnavailableError
from codepool.model import Candidate, IssuedCode, PoolLedger, SweepState
from codepool.repository import ClaimOutcome, IdempotencyRecord, SlotCount, WriteReport

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

BATCH_WRITE_SIZE = 25
BATCH_GET_SIZE = 100
MAX_BATCH_ATTEMPTS = 10
"""Rounds of a refill's batch call while DynamoDB leaves part of it unprocessed."""
MAX_LOOKUP_ATTEMPTS = 4
"""The same for a look-up, which a client waits on (its deadline bounds it too)."""
MAX_CONFLICT_ATTEMPTS = 4
"""Attempts of one call that meets an item held by another transaction (botocore does not retry those)."""
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0
CONFLICT_CODES = frozenset({"TransactionConflictException"})
"""What botocore does not retry and we do; `TransactionInProgressException` it retries as throttling."""
CLAIM_THROTTLE_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"})
"""Cancellation reasons that say nothing about the candidates: the same claim may succeed a moment later."""

Item = dict[str, Any]
T = TypeVar("T")

# The slot must still exist: whoever deletes it first owns the code, and a concurrent claimer of the same
# slot has its whole transaction cancelled instead of issuing the code a second time.
SLOT_STILL_AVAILABLE = "attribute_exists(pk)"
# The code must never have been issued: closes the race with a refill that re-added a slot for a code
# claimed meanwhile, and with another pool whose format can produce the same code.
CODE_NEVER_ISSUED = "attribute_not_exists(pk)"
# No slot for this code yet: two refills at once may write the same code, and only the one creating it counts it.
SLOT_NOT_THERE = "attribute_not_exists(pk)"
WRITER_ATTRIBUTE = "writer"
"""On a slot written by `add_new_slots`: the refill that created it."""
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
        response = await _send(
            "Query",
            lambda: self._client.query(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ProjectionExpression="sk, code, #at",
                ExpressionAttributeNames={"#at": WRITTEN_AT},
                Limit=limit,
            ),
        )
        return [
            Candidate(
                key=item[SORT_KEY]["S"],
                code=item["code"]["S"],
                shard=shard,
                written_at=int(item[WRITTEN_AT]["N"]) if WRITTEN_AT in item else None,
            )
            for item in response["Items"]
        ]

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
                        "Item": record_item(candidate.key, record),
                        "ConditionExpression": CODE_NEVER_ISSUED,
                        # The record found, if any: when it was issued tells a stale slot from one written again.
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        if idempotency is not None:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": idempotency_item(idempotency),
                        "ConditionExpression": IDEMPOTENCY_KEY_FREE,
                        "ExpressionAttributeNames": {"#expires": TTL_ATTRIBUTE},
                        "ExpressionAttributeValues": {":now": {"N": str(now)}},
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        # The token makes the SDK's own retries of this exact write idempotent: a retry after a lost response
        # succeeds instead of failing on the conditions the first attempt already satisfied.
        token = uuid.uuid4().hex
        try:
            await _send(
                "TransactWriteItems",
                lambda: self._client.transact_write_items(TransactItems=actions, ClientRequestToken=token),
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            return _cancelled_outcome(candidates, exc.response.get("CancellationReasons", []), idempotency)
        return ClaimOutcome(issued=list(records))

    async def remove_stale_slot(self, pool: str, candidate: Candidate, token: str, *, counted: bool = True) -> None:
        actions: list[Any] = [
            {
                "Delete": {
                    "TableName": self._table,
                    "Key": slot_key(pool, candidate.shard, candidate.key),
                    # Another claimer may have removed (and counted) it already: then this counts nothing.
                    "ConditionExpression": SLOT_STILL_AVAILABLE,
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": ledger_key(pool),
                    "UpdateExpression": "ADD stale :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
        if not counted:
            del actions[1]
        try:
            await _send(
                "TransactWriteItems",
                lambda: self._client.transact_write_items(TransactItems=actions, ClientRequestToken=token),
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise

    async def existing_among(
        self, pool: str, candidates: Sequence[Candidate], *, check_available: bool
    ) -> tuple[set[str], set[str]]:
        keys: list[Item] = [code_key(c.key) for c in candidates]
        if check_available:
            keys += [slot_key(pool, c.shard, c.key) for c in candidates]
        issued: set[str] = set()
        available: set[str] = set()
        for item in await self._existing(keys):
            partition, sort = item[PARTITION_KEY]["S"], item[SORT_KEY]["S"]
            if is_code_record(partition):
                issued.add(code_of_record(partition))
            else:
                available.add(sort)
        return issued, available

    async def available_among(self, pool: str, candidates: Sequence[Candidate]) -> set[str]:
        keys: list[Item] = [slot_key(pool, c.shard, c.key) for c in candidates]
        return {item[SORT_KEY]["S"] for item in await self._existing(keys)}

    async def _existing(self, keys: Sequence[Item]) -> list[Item]:
        """The items among `keys` that exist (keys only), one BatchGetItem per BATCH_GET_SIZE keys, in turn."""
        existing: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_SIZE):
            request: Item = {
                self._table: {"Keys": list(keys[start : start + BATCH_GET_SIZE]), "ProjectionExpression": "pk, sk"}
            }
            found = await self._batch_get(request, MAX_BATCH_ATTEMPTS)
            if found is None:
                raise RefillError("BatchGetItem kept returning UnprocessedKeys", written=0)
            existing.extend(found)
        return existing

    async def _batch_get(self, request: Item, attempts: int) -> list[Item] | None:
        """Every item `request` asks for, retrying `UnprocessedKeys` (bounded, jittered); None if some stayed
        unprocessed. A throttled table may answer any part of a batch, or none of it."""
        found: list[Item] = []
        for attempt in range(attempts):
            response = await _send("BatchGetItem", partial(self._client.batch_get_item, RequestItems=request))
            found.extend(response.get("Responses", {}).get(self._table, []))
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return found
            await _backoff(attempt)
        return None

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
        now = _epoch_ms()
        puts = [{"PutRequest": {"Item": slot_item(pool, c, now)}} for c in chunk]
        request: Item = {self._table: puts}
        report = WriteReport()
        for attempt in range(MAX_BATCH_ATTEMPTS):
            response = await _send("BatchWriteItem", partial(self._client.batch_write_item, RequestItems=request))
            report.requests += 1
            request = dict(response.get("UnprocessedItems") or {})
            if not request:
                report.written = len(chunk)
                return report
            report.unprocessed_retries += 1
            await _backoff(attempt)
        unwritten = len(request.get(self._table, []))
        raise RefillError("BatchWriteItem kept returning UnprocessedItems", written=len(chunk) - unwritten)

    async def add_new_slots(self, pool: str, candidates: Sequence[Candidate], writer: str) -> WriteReport:
        report = WriteReport()
        for candidate in candidates:
            item = {**slot_item(pool, candidate, _epoch_ms()), WRITER_ATTRIBUTE: {"S": writer}}
            try:
                await _send(
                    "PutItem",
                    partial(
                        self._client.put_item,
                        TableName=self._table,
                        Item=item,
                        ConditionExpression=SLOT_NOT_THERE,
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    ),
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                # Ours all the same when the SDK retried our put after its answer was lost.
                old: Item = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
                if old.get(WRITER_ATTRIBUTE, {}).get("S") == writer:
                    report.written += 1
            except StoreUnavailableError as exc:
                raise RefillError(f"PutItem of a slot failed: {exc}", report.written) from exc
            else:
                report.written += 1
            report.requests += 1
        return report

    async def count_available(self, pool: str, shard: int, limit: int | None = None) -> SlotCount:
        total = 0
        arguments: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": slot_partition(pool, shard)}},
            "Select": "COUNT",
        }
        while True:
            if limit is not None:
                arguments["Limit"] = limit - total
            response = await _send("Query", lambda: self._client.query(**arguments))
            total += response["Count"]
            last = response.get("LastEvaluatedKey")
            if last is None:
                return SlotCount(total)
            arguments["ExclusiveStartKey"] = last
            if limit is not None and total >= limit:
                # DynamoDB names the last key of a page cut by the limit even when nothing follows it.
                arguments["Limit"] = 1
                after = await _send("Query", lambda: self._client.query(**arguments))
                return SlotCount(total, last[SORT_KEY]["S"] if after["Count"] else None)

    async def find_issued(self, keys: Sequence[str]) -> dict[str, IssuedCode]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        request: Item = {self._table: {"Keys": [code_key(key) for key in unique], "ConsistentRead": True}}
        found = await self._batch_get(request, MAX_LOOKUP_ATTEMPTS)
        if found is None:
            # Answering 404 for a code that may exist would be a lie; the caller can retry.
            raise StoreUnavailableError("DynamoDB BatchGetItem kept returning UnprocessedKeys (throttled)")
        return {code_of_record(item[PARTITION_KEY]["S"]): record_from_item(item) for item in found}

    async def get_issued(self, keys: Sequence[str]) -> IssuedCode | None:
        """The issued code recorded under the first of `keys` that exists."""
        found = await self.find_issued(keys)
        return next((found[key] for key in keys if key in found), None)

    async def get_ledger(self, pool: str) -> PoolLedger:
        response = await _send(
            "GetItem",
            lambda: self._client.get_item(TableName=self._table, Key=ledger_key(pool), ConsistentRead=True),
        )
        return ledger_from_item(response.get("Item"))

    async def add_to_ledger(self, pool: str, token: str, *, written: int = 0, imported: int = 0) -> None:
        if not written and not imported:
            return
        # A one-item transaction for its ClientRequestToken: an UpdateItem ADD that applied and lost its answer
        # would be applied again by any retry (the SDK's included); the same token is applied once.
        actions: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": ledger_key(pool),
                    "UpdateExpression": "ADD written :written, imported :imported",
                    "ExpressionAttributeValues": {":written": {"N": str(written)}, ":imported": {"N": str(imported)}},
                }
            }
        ]
        try:
            await _send(
                "TransactWriteItems",
                lambda: self._client.transact_write_items(TransactItems=actions, ClientRequestToken=token),
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            # No condition to fail: only capacity or a conflicting transaction cancels it, and nothing was applied.
            raise StoreUnavailableError(f"DynamoDB cancelled a ledger addition: {exc}", retry_after=1) from exc

    async def save_snapshots(self, pool: str, snapshots: Sequence[tuple[float, int]]) -> None:
        listed = {"L": [{"L": [{"N": repr(round(at, 3))}, {"N": str(issued)}]} for at, issued in snapshots]}
        await self._update_ledger(pool, "SET snapshots = :snapshots", {":snapshots": listed})

    async def start_sweep(self, pool: str, sweep: SweepState) -> SweepState:
        try:
            await self._update_ledger(
                pool,
                "SET sweepStart = :start, sweepStep = :step, sweepCursor = :cursor",
                {":start": sweep.start, ":step": sweep.step, ":cursor": sweep.cursor},
                condition="attribute_not_exists(sweepStep)",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        standing = (await self.get_ledger(pool)).sweep
        return standing if standing is not None else sweep

    async def advance_sweep(self, pool: str, cursor: int) -> None:
        try:
            await self._update_ledger(
                pool,
                "SET sweepCursor = :cursor",
                {":cursor": cursor},
                condition="attribute_exists(sweepStep) AND sweepCursor < :cursor",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    async def _update_ledger(
        self, pool: str, expression: str, values: dict[str, Any], condition: str | None = None
    ) -> None:
        """One UpdateItem on the ledger; a failed `condition` is the caller's `ClientError` to read."""
        arguments: Item = {
            "TableName": self._table,
            "Key": ledger_key(pool),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {
                name: value if isinstance(value, dict) else {"N": str(value)} for name, value in values.items()
            },
        }
        if condition is not None:
            arguments["ConditionExpression"] = condition
        await _send("UpdateItem", lambda: self._client.update_item(**arguments))

    async def get_idempotency(self, key: str, now: int) -> IdempotencyRecord | None:
        response = await _send(
            "GetItem",
            lambda: self._client.get_item(TableName=self._table, Key=idempotency_key(key), ConsistentRead=True),
        )
        item = response.get("Item")
        if item is None:
            return None
        record = idempotency_from_item(key, item)
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
            outcome.replayed = idempotency_from_item(idempotency.key, last["Item"])
            return outcome
    outcome.throttled = next((code for code in codes if code in CLAIM_THROTTLE_REASONS), None)
    for index, candidate in enumerate(candidates):
        slot_reason = codes[2 * index] if 2 * index < len(codes) else "None"
        record_reason = codes[2 * index + 1] if 2 * index + 1 < len(codes) else "None"
        if record_reason == "ConditionalCheckFailed" and slot_reason == "None":
            issued_at = reasons[2 * index + 1].get("Item", {}).get("issuedAt", {}).get("S")
            if _written_before(candidate, issued_at):
                outcome.rewritten.append(candidate)
            else:
                outcome.stale.append(candidate)
        elif "ConditionalCheckFailed" in (slot_reason, record_reason):
            outcome.lost.append(candidate)
    if not outcome.lost and not outcome.stale and outcome.throttled is None:
        # The engine gave no usable reason (or only for the idempotency record, without its item): treat
        # every candidate as lost so the caller draws fresh ones.
        outcome.lost = list(candidates)
    return outcome


def _written_before(candidate: Candidate, issued_at: str | None) -> bool:
    """Whether the slot was written before its code was issued: then it was claimed, and this slot is the same
    write landing again (an SDK retry after a lost answer), not a new slot the ledger counted."""
    if not candidate.written_at or issued_at is None:
        return False
    return candidate.written_at < datetime.fromisoformat(issued_at).timestamp() * 1000


def _epoch_ms() -> int:
    return int(time.time() * 1000)


async def _send(operation: str, call: Callable[[], Awaitable[T]]) -> T:
    """One DynamoDB call with its errors mapped (`store_errors`); a call that met another transaction's item is
    retried here, bounded and jittered, since botocore's retry modes leave that to the caller."""
    for attempt in range(MAX_CONFLICT_ATTEMPTS):
        try:
            with store_errors(operation):
                return await call()
        except StoreUnavailableError as exc:
            conflicted = isinstance(exc.__cause__, ClientError) and error_code(exc.__cause__) in CONFLICT_CODES
            if not conflicted or attempt + 1 == MAX_CONFLICT_ATTEMPTS:
                raise
        await _backoff(attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _backoff(attempt: int) -> None:
    # Full jitter: concurrent refills that were throttled together do not retry together.
    await asyncio.sleep(full_jitter(attempt, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS))
