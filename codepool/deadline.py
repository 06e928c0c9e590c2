"""One invocation's time budget: every DynamoDB call and every retry loop of a request draws from it.

A request must end with our own answer (a `503` with `Retry-After` and our error body, at worst) before API
Gateway or Lambda cut it off, so the budget is the smaller of a configured limit and the time Lambda says is
left, minus a margin for building the response.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deadline:
    expires_at: float
    """On the `time.monotonic()` clock."""

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + max(0.0, seconds))

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

    def timeout(self) -> asyncio.Timeout:
        """`async with deadline.timeout():` cancels the block and raises `TimeoutError` when time is up."""
        return asyncio.timeout_at(asyncio.get_running_loop().time() + self.remaining())
