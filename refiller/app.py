"""EventBridge schedule (all pools) or a manual `{"pool": NAME, "target": N}` -> refill -> summary log.

A failed refill raises, so Lambda counts the invocation as failed and its on-failure destination sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from codepool.config import PoolConfig, resolve_pool
from codepool.errors import InvalidRequestError
from codepool.model import RefillSummary
from codepool.refilling import refill_pool
from codepool.runtime import Container, ContainerHolder

logger = Logger(service="unique-codes-refiller")
metrics = Metrics(namespace="UniqueCodes", service="refiller")
container = ContainerHolder()

_MANUAL_FIELDS = {"pool", "target"}


def requested_refills(event: dict[str, Any], pools: Mapping[str, PoolConfig]) -> list[tuple[PoolConfig, int | None]]:
    """Which pools to refill, and to what target (None: the pool's own)."""
    if event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events":
        return [(pool, None) for pool in pools.values()]
    unknown = sorted(set(event) - _MANUAL_FIELDS)
    if unknown or "pool" not in event:
        raise InvalidRequestError(
            f"expected an EventBridge Scheduled Event or {{'pool': NAME, 'target': N}}; got keys {sorted(event)}"
        )
    pool = resolve_pool(pools, event["pool"]) if isinstance(event["pool"], str) else None
    if pool is None:
        raise InvalidRequestError("'pool' must be a string")
    target = event.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
        raise InvalidRequestError("'target' must be an integer")
    return [(pool, target)]


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refills = requested_refills(event, container.pools)

    async def refill_all(runtime: Container) -> list[RefillSummary]:
        return [await refill_pool(runtime.repository, pool, target) for pool, target in refills]

    summaries = container.run(refill_all)
    for summary in summaries:
        logger.info("refilled pool", extra=summary.to_json())
        metrics.add_dimension(name="pool", value=summary.pool)
        metrics.add_metric(name="RefillWritten", unit=MetricUnit.Count, value=summary.written)
        metrics.add_metric(name="RefillSkippedIssued", unit=MetricUnit.Count, value=summary.skipped_issued)
        # The depth found at the start of the run is what claims left since the last run: the alarm on its
        # minimum fires when a pool drains below its low watermark between refills.
        metrics.add_metric(name="PoolAvailable", unit=MetricUnit.Count, value=summary.available_before)
        metrics.add_metric(
            name="PoolAvailableAfterRefill", unit=MetricUnit.Count, value=summary.available_before + summary.written
        )
        metrics.flush_metrics()
    return {"refilled": [summary.to_json() for summary in summaries]}
