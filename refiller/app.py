"""EventBridge schedule (all pools) or a manual `{"pool": NAME, "target": N}` -> refill -> summary log.

Each pool is refilled on its own: one pool's failure (DynamoDB trouble) is logged and
counted for that pool, and the pools after it are still refilled. Once every pool was tried, a failure in any
of them raises, so Lambda counts the invocation as failed and its on-failure destination and alarm see it.

The invocation has a deadline (Lambda's remaining time less DEADLINE_MARGIN_SECONDS, at most
`REFILL_BUDGET_SECONDS`); a pool that needs more than the time it gets stops cleanly at it, reports
`complete: false`, and is topped up further by the next scheduled run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from codepool.config import MAX_TARGET, PoolConfig, resolve_pool
from codepool.deadline import Deadline
from codepool.errors import InvalidRequestError, RefillError
from codepool.model import RefillSummary
from codepool.refilling import PoolRefillError, refill_pool
from codepool.runtime import Container, ContainerHolder, register_snapshot_hooks

logger = Logger(service="unique-codes-refiller")
metrics = Metrics(namespace="UniqueCodes", service="refiller")
"""Per-pool metrics (dimensions service and pool), flushed once per pool."""
fleet_metrics = EphemeralMetrics(namespace="UniqueCodes", service="refiller")
"""Metrics over all pools (dimension service only), so one alarm covers every pool. A separate, non-shared set:
Powertools' `Metrics` instances share their metrics and dimensions, and a dimension stays until a flush."""
container = ContainerHolder()

DEADLINE_MARGIN_SECONDS = 10.0
"""Kept back from Lambda's remaining time: for the round the deadline cuts short to unwind (its cancelled
requests close their connections), for counting and starting the pools after it, and for the logs and metrics,
so the run always ends with its own report, never with Lambda's timeout."""

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
    # refill_pool checks this too; checked here as well, so a bad manual event stays a plain InvalidRequestError
    # rather than one pool's failure.
    if target is not None and not 0 <= target <= MAX_TARGET:
        raise InvalidRequestError(f"target must be between 0 and {MAX_TARGET}, got {target}")
    return [(pool, target)]


def invocation_deadline(context: LambdaContext | None, budget_seconds: float) -> Deadline:
    """The smaller of the refill budget (`REFILL_BUDGET_SECONDS`) and Lambda's remaining time less the margin."""
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
    # Lambda never starts an invocation with no time left; 0 is what a bare `LambdaContext()` (the Powertools
    # typing class) answers: no known limit.
    if remaining_ms is not None and remaining_ms <= 0:
        remaining_ms = None
    return Deadline.for_invocation(budget_seconds, remaining_ms, DEADLINE_MARGIN_SECONDS)


@dataclass(slots=True)
class PoolOutcome:
    """How one pool's refill ended: a summary (complete or stopped at its deadline), or an error (with the
    summary of what it did first, when it got as far as counting the pool)."""

    pool: PoolConfig
    summary: RefillSummary | None
    error: Exception | None = None

    @property
    def below_low_watermark(self) -> bool:
        """The depth found at the start was below the low watermark; unknown (not even read) counts as below."""
        return self.summary is None or self.summary.available_before < self.pool.low_watermark

    @property
    def written(self) -> int:
        if self.summary is not None:
            return self.summary.written
        return self.error.written if isinstance(self.error, RefillError) else 0


def _share(deadline: Deadline, pools_left: int) -> Deadline:
    """This pool's deadline: an equal share of the time left among the pools still to refill.

    So a pool whose target takes more than a run (or whose DynamoDB calls hang) cannot starve the pools after it;
    a pool that finishes early leaves its unused share to those after it, and the last pool gets all that is left.
    """
    return Deadline(min(deadline.expires_at, Deadline.after(deadline.remaining() / pools_left).expires_at))


async def refill_each(
    runtime: Container, refills: Sequence[tuple[PoolConfig, int | None]], deadline: Deadline
) -> list[PoolOutcome]:
    """Refill every pool in order, each on its own: a pool's failure is recorded and the next pool still runs."""
    outcomes: list[PoolOutcome] = []
    for index, (pool, target) in enumerate(refills):
        share = _share(deadline, len(refills) - index)
        try:
            summary = await refill_pool(runtime.repository, pool, target, deadline=share, carry=runtime.refill_carry)
        except PoolRefillError as exc:
            outcomes.append(PoolOutcome(pool, exc.summary, exc))
        except Exception as exc:  # one pool's trouble is that pool's alone; reported once all pools were tried
            outcomes.append(PoolOutcome(pool, None, exc))
        else:
            outcomes.append(PoolOutcome(pool, summary))
    return outcomes


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refills = requested_refills(event, container.pools)
    deadline = invocation_deadline(context, container.settings.refill_budget)

    async def work(runtime: Container) -> list[PoolOutcome]:
        return await refill_each(runtime, refills, deadline)

    outcomes = container.run(work)
    for outcome in outcomes:
        _log(outcome)
        _emit_pool_metrics(outcome)
    _emit_fleet_metrics(outcomes)
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    if failed:
        reasons = "; ".join(f"{o.pool.name!r}: {type(o.error).__name__}: {o.error}" for o in failed)
        raise RefillError(
            f"refill failed for {len(failed)} of {len(outcomes)} pools ({reasons})",
            sum(outcome.written for outcome in outcomes),
        ) from failed[0].error
    return {"refilled": [outcome.summary.to_json() for outcome in outcomes if outcome.summary is not None]}


def _log(outcome: PoolOutcome) -> None:
    summary = outcome.summary
    if outcome.error is not None or summary is None:
        details = summary.to_json() if summary is not None else {"pool": outcome.pool.name}
        logger.error(
            "pool refill failed",
            extra={**details, "error": str(outcome.error), "errorType": type(outcome.error).__name__},
            exc_info=outcome.error,
        )
        return
    logger.info("refilled pool", extra=summary.to_json())
    if summary.exhausted:
        # Not a failed run (nothing went wrong, and the next run would fail the same way), but an operator must
        # act: the PoolsExhausted alarm fires, and claims are answered 503 pool_exhausted.
        logger.error("pool exhausted: every code of its keyspace or import is issued", extra=summary.to_json())
    elif summary.stopped == "keyspace":
        logger.warning("pool swept: every code left is in the pool, none can be added", extra=summary.to_json())
    elif not summary.complete:
        logger.warning("pool refill stopped before its target; the next scheduled run goes on", extra=summary.to_json())


def _emit_pool_metrics(outcome: PoolOutcome) -> None:
    summary = outcome.summary
    try:
        metrics.add_dimension(name="pool", value=outcome.pool.name)
        metrics.add_metric(name="RefillFailed", unit=MetricUnit.Count, value=1 if outcome.error is not None else 0)
        metrics.add_metric(name="RefillWritten", unit=MetricUnit.Count, value=outcome.written)
        if summary is not None:
            metrics.add_metric(name="RefillSkippedIssued", unit=MetricUnit.Count, value=summary.skipped_issued)
            metrics.add_metric(name="PoolExhausted", unit=MetricUnit.Count, value=1 if summary.exhausted else 0)
            # The depth found at the start of the run is what claims left since the last run: the alarm on its
            # minimum fires when a pool drains below its low watermark between refills. Not emitted when the
            # depth could not be read: a missing datapoint, not a made-up 0.
            metrics.add_metric(name="PoolAvailable", unit=MetricUnit.Count, value=summary.available_before)
            metrics.add_metric(
                name="PoolAvailableAfterRefill",
                unit=MetricUnit.Count,
                value=summary.available_before + summary.written,
            )
    finally:
        metrics.flush_metrics()  # also drops the pool dimension, which would otherwise stick to later metrics


def _emit_fleet_metrics(outcomes: Sequence[PoolOutcome]) -> None:
    """`PoolsBelowLowWatermark`: how many of the requested pools started this run below their low watermark (a
    pool whose depth could not be read counts as below); `PoolsExhausted`: how many can get no more codes and
    have none left. Dimension `service` only: one alarm each covers all pools."""
    below = sum(outcome.below_low_watermark for outcome in outcomes)
    fleet_metrics.add_metric(name="PoolsBelowLowWatermark", unit=MetricUnit.Count, value=below)
    exhausted = sum(outcome.summary is not None and outcome.summary.exhausted for outcome in outcomes)
    fleet_metrics.add_metric(name="PoolsExhausted", unit=MetricUnit.Count, value=exhausted)
    fleet_metrics.flush_metrics()


def before_snapshot() -> None:
    """SnapStart (off for the refiller in the template, harmless if turned on): what is static, built in."""
    container.prepare_snapshot()


def after_restore() -> None:
    """SnapStart, in each restored container: fresh random state, then the loop and the client."""
    container.restore()


register_snapshot_hooks(before_snapshot, after_restore)
