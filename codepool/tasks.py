"""Concurrent work on a container's long-lived loop: nothing outlives the call that started it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")


async def run_together(work: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run `work` concurrently and return the results in order. The first failure cancels the rest (a
    `TaskGroup`: a sibling left running would wake up during the next invocation) and is raised as itself,
    not as an exception group, so callers and the API's error mapping see the domain error."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coroutine) for coroutine in work]
    except BaseExceptionGroup as failed:
        raise first_error(failed) from failed
    return [task.result() for task in tasks]


async def run_limited(limit: int, work: Iterable[Callable[[], Coroutine[Any, Any, T]]]) -> list[T]:
    """`run_together`, with at most `limit` pieces running at a time (each started when a slot frees up: a
    coroutine is only created once it may run, so none is left never awaited when a sibling fails)."""
    slots = asyncio.Semaphore(limit)

    async def limited(start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        async with slots:
            return await start()

    return await run_together(limited(start) for start in work)


async def run_pair(first: Coroutine[Any, Any, T], second: Coroutine[Any, Any, U]) -> tuple[T, U]:
    """`run_together` for two pieces of work of different types."""
    try:
        async with asyncio.TaskGroup() as group:
            one, two = group.create_task(first), group.create_task(second)
    except BaseExceptionGroup as failed:
        raise first_error(failed) from failed
    return one.result(), two.result()


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of a (possibly nested) exception group."""
    first = group.exceptions[0]
    return first_error(first) if isinstance(first, BaseExceptionGroup) else first
