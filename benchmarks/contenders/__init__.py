"""The Lambda handlers the benchmarks compare, each importable on its own in a fresh process.

- `ours`: the product, `issuer.app.lambda_handler` (pool claim, aioboto3, one loop and client per container).
- `on_demand`: the demo's algorithm: a random code and a conditional `PutItem`, retried on collision (async).
- `naive`: our claim, but a new session, client and `asyncio.run` on every invocation.
- `sync`: our claim with boto3: a prefetched window of slots and the same `TransactWriteItems`.

Every contender logs and counts its codes as ours does (`benchmarks.contenders.observed`: Powertools' logger and
`CodesIssued` metric), so the table compares designs doing the same job. Every contender reads `TABLE_NAME`,
`AWS_ENDPOINT_URL_DYNAMODB` and `POOLS_FILE` on its first invocation, as ours does, so init measures imports
only and the first request pays for the client in every contender.
"""

from __future__ import annotations

import json
from typing import Any

HANDLERS = {
    "ours": "issuer.app",
    "on_demand": "benchmarks.contenders.on_demand",
    "naive": "benchmarks.contenders.naive",
    "sync": "benchmarks.contenders.sync",
}


def created(body: dict[str, Any]) -> dict[str, Any]:
    """The API Gateway proxy response every contender returns for an issued code."""
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }
