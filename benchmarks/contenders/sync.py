"""Our claim with boto3: a prefetched window of pool slots, each claimed with the same `TransactWriteItems`.

Deliberately free of aioboto3: it uses `codepool.dynamodb.keys` (plain Python) for the item layout, and
conditions that mirror `codepool.dynamodb.repository`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import deque
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks.contenders import created
from benchmarks.contenders.observed import observed
from codepool.config import PoolConfig, Settings, load_pools, resolve_pool
from codepool.dynamodb.keys import code_key, slot_key, slot_partition
from codepool.model import utc_timestamp
from issuer.requests import parse_issue_body

WINDOW = 16
MAX_CLAIM_ATTEMPTS = 8
SLOT_STILL_AVAILABLE = "attribute_exists(pk)"
CODE_NEVER_ISSUED = "attribute_not_exists(pk)"


class SyncIssuer:
    def __init__(self, settings: Settings, pools: dict[str, PoolConfig]) -> None:
        self.pools = pools
        session = boto3.session.Session(region_name=settings.region, **settings.local_credentials())
        config = Config(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            retries={"mode": "standard", "max_attempts": settings.max_attempts},
            tcp_keepalive=True,
            parameter_validation=False,  # as ours (codepool.dynamodb.client)
        )
        self._client = session.client("dynamodb", endpoint_url=settings.endpoint_url, config=config)
        self._table = settings.table_name
        self._window: deque[tuple[str, str, int]] = deque()

    def issue(self, pool: PoolConfig) -> dict[str, str]:
        for _ in range(MAX_CLAIM_ATTEMPTS):
            if not self._window:
                self._prefetch(pool)
            key, code, shard = self._window.popleft()
            record = {"code": code, "pool": pool.name, "issuedAt": utc_timestamp(time.time())}
            slot = slot_key(pool.name, shard, key)
            item = {**code_key(key), **{k: {"S": v} for k, v in record.items()}}
            actions: Any = [
                {"Delete": {"TableName": self._table, "Key": slot, "ConditionExpression": SLOT_STILL_AVAILABLE}},
                {"Put": {"TableName": self._table, "Item": item, "ConditionExpression": CODE_NEVER_ISSUED}},
            ]
            try:
                self._client.transact_write_items(TransactItems=actions, ClientRequestToken=uuid.uuid4().hex)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                self._window.clear()  # another claimer works this stretch: look elsewhere
                continue
            return record
        raise RuntimeError(f"pool {pool.name!r}: lost {MAX_CLAIM_ATTEMPTS} races in a row")

    def _prefetch(self, pool: PoolConfig) -> None:
        shards = list(range(pool.shards))
        secrets.SystemRandom().shuffle(shards)
        for shard in shards:
            start = pool.format.canonical(pool.format.generate())
            values = {":pk": {"S": slot_partition(pool.name, shard)}, ":start": {"S": start}}
            for condition in ("pk = :pk AND sk >= :start", "pk = :pk AND sk < :start"):
                response = self._client.query(
                    TableName=self._table,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ProjectionExpression="sk, code",
                    Limit=WINDOW - len(self._window),
                )
                self._window.extend((i["sk"]["S"], i["code"]["S"], shard) for i in response["Items"])
                if len(self._window) >= WINDOW:
                    return
            if self._window:
                return
        raise RuntimeError(f"pool {pool.name!r} is empty")


_issuer: SyncIssuer | None = None


def _issue(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    global _issuer
    if _issuer is None:
        settings = Settings.from_env()
        _issuer = SyncIssuer(settings, load_pools(settings.pools_file))
    pool = resolve_pool(_issuer.pools, parse_issue_body(event.get("body")).pool)
    return pool.name, created(_issuer.issue(pool))


lambda_handler = observed("sync", _issue)
