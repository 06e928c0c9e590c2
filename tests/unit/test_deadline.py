from __future__ import annotations

import asyncio
import time

import pytest

from codepool.deadline import Deadline


def test_budget_is_the_smaller_of_the_limit_and_lambdas_remaining_time() -> None:
    assert 4.9 < Deadline.for_invocation(5.0, None, 0.5).remaining() <= 5.0
    assert 2.4 < Deadline.for_invocation(5.0, 3000, 0.5).remaining() <= 2.5
    assert Deadline.for_invocation(5.0, 100, 0.5).expired


def test_remaining_never_goes_negative() -> None:
    deadline = Deadline(time.monotonic() - 10)
    assert deadline.remaining() == 0.0
    assert deadline.expired


async def test_timeout_cancels_work_that_outlives_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with Deadline.after(0.05).timeout():
            await asyncio.sleep(5)
    assert time.monotonic() - started < 1.0
