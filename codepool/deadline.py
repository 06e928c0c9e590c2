"""One invocation's time budget: every DynamoDB call and every retry loop of a request draws from it.

A request must end with our own answer (a `503` with `Retry-After` and our error body, at worst) before API
Gateway or Lambda cut it off, so the budget is the smaller of a configured limit and the time Lambda says is
left, minus a margin for building the response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from codepool.errors import StoreUnavailableError

DEFAULT_REQUEST_BUDGET_SECONDS = 5.0
"""An API request's budget unless `REQUEST_BUDGET_SECONDS` says otherwise: two SDK attempts at the default
3 s read timeout can fit, and a caller never waits anywhere near API Gateway's 29 s."""
DEFAULT_REFILL_BUDGET_SECONDS = 900.0
"""A refiller run's budget unless `REFILL_BUDGET_SECONDS` says otherwise: Lambda's longest timeout, so on Lambda
the remaining time decides; the whole budget where there is no Lambda context (tests, tools)."""
RESPONSE_MARGIN_SECONDS = 0.5
"""Kept back from Lambda's remaining time to build the response and flush metrics."""


@dataclass(frozen=True, slots=True)
class Deadline:
    expires_at: float
    """On the `time.monotonic()` clock."""
    budget: float = 0.0
    """The seconds the deadline was given, for messages."""

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        seconds = max(0.0, seconds)
        return cls(time.monotonic() + seconds, seconds)

    @classmethod
    def for_invocation(cls, budget_seconds: float, remaining_ms: int | None, margin_seconds: float) -> Deadline:
        """The smaller of `budget_seconds` and Lambda's remaining time (if known) less `margin_seconds`."""
        seconds = budget_seconds
        if remaining_ms is not None:
            seconds = min(seconds, remaining_ms / 1000 - margin_seconds)
        return cls.after(seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def allows(self, seconds: float) -> bool:
        """Whether `seconds` more (a backoff, say) still leave time to act afterwards."""
        return self.remaining() > seconds

    def timeout(self) -> asyncio.Timeout:
        """`async with deadline.timeout():` cancels the block and raises `TimeoutError` when time is up."""
        return asyncio.timeout_at(asyncio.get_running_loop().time() + self.remaining())


@asynccontextmanager
async def within(deadline: Deadline | None, what: str) -> AsyncIterator[None]:
    """Run the block within `deadline` (if any); running out is `StoreUnavailableError` (a 503), since the only
    thing a request waits on is DynamoDB."""
    if deadline is None:
        yield
        return
    try:
        async with deadline.timeout():
            yield
    except TimeoutError as exc:
        raise StoreUnavailableError(
            f"{what}: DynamoDB did not answer within the request's {deadline.budget:.1f} s deadline", retry_after=1
        ) from exc
