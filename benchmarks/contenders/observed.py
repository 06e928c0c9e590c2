"""The observable job every contender does besides issuing, as ours does it: a Powertools logger with the
request's correlation id, and the `CodesIssued` metric (per pool, EMF) flushed at the end of each invocation.

Without it a contender skipped part of the job ours does (and its import: about 25 ms of Powertools), so the
Lambda table compared logging stacks as much as designs. A module of its own, imported by the contenders only,
so the emulator's import of `benchmarks.contenders` does not pre-import Powertools for ours.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def observed(service: str, issue: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]) -> Handler:
    """A Lambda handler around `issue(event) -> (pool, response)` that logs and counts as ours does."""
    logger = Logger(service=service)
    metrics = Metrics(namespace="UniqueCodes", service=service)

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        context_of_request = event.get("requestContext") or {}
        logger.set_correlation_id(context_of_request.get("requestId"))
        try:
            pool, response = issue(event)
            metrics.add_dimension(name="pool", value=pool)
            metrics.add_metric(name="CodesIssued", unit=MetricUnit.Count, value=1)
            return response
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return lambda_handler
