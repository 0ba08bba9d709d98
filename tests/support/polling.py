"""Waiting until something is so: the one polling loop of the tests and the benchmarks.

``await eventually(probe, until=..., what=...)`` calls ``probe`` until ``until`` holds for its
value and returns that value; after ``timeout`` seconds it raises ``NotReached``, whose message
says what was awaited and what the probe saw last. ``eventually_blocking`` is the same for code
that cannot await (a synchronous test, a method also called from threads).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

# Enough of the last value to see what went wrong, not a page of it.
_LAST_CHARS = 2000


class NotReached(AssertionError):
    """What was awaited did not happen within the timeout; ``last`` is what the probe saw last
    (its value, or the error it raised that ``retry`` allowed)."""

    def __init__(self, what: str, timeout: float, last: object) -> None:
        self.what = what
        self.timeout = timeout
        self.last: Any = last
        super().__init__(f"{what}: not within {timeout:g}s; last: {repr(last)[:_LAST_CHARS]}")


class _Polling:
    """The deadline, the pauses (doubling up to ``max_interval`` when given) and what was seen."""

    def __init__(
        self,
        what: str,
        timeout: float,
        interval: float,
        max_interval: float | None,
        retry: tuple[type[BaseException], ...],
    ) -> None:
        self.what, self.timeout, self.retry = what, timeout, retry
        self.pause, self.max_interval = interval, max_interval
        self.deadline = time.monotonic() + timeout
        self.last: object = None

    def give_up_or_pause(self) -> float:
        if time.monotonic() > self.deadline:
            raise NotReached(self.what, self.timeout, self.last)
        pause = self.pause
        if self.max_interval is not None:
            self.pause = min(self.max_interval, self.pause * 2)
        return pause


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = 30,
    interval: float = 0.1,
    max_interval: float | None = None,
    retry: tuple[type[BaseException], ...] = (),
    what: str = "the condition",
) -> T: ...


@overload
async def eventually(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = 30,
    interval: float = 0.1,
    max_interval: float | None = None,
    retry: tuple[type[BaseException], ...] = (),
    what: str = "the condition",
) -> T: ...


async def eventually(
    probe: Callable[[], Any],
    *,
    until: Callable[[Any], object] = bool,
    timeout: float = 30,
    interval: float = 0.1,
    max_interval: float | None = None,
    retry: tuple[type[BaseException], ...] = (),
    what: str = "the condition",
) -> Any:
    """Call ``probe`` (a function or a coroutine function) every ``interval`` seconds until
    ``until(value)`` is true; returns that value.

    An error of a type in ``retry`` raised by the probe counts as "not yet"; any other error
    ends the wait at once. With ``max_interval`` the pause doubles after each try, up to it.

    Raises ``NotReached`` once ``timeout`` seconds have passed (the probe runs at least once).
    """
    polling = _Polling(what, timeout, interval, max_interval, retry)
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
        except retry as error:
            polling.last = error
        else:
            if until(value):
                return value
            polling.last = value
        await asyncio.sleep(polling.give_up_or_pause())


def eventually_blocking(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = 30,
    interval: float = 0.1,
    max_interval: float | None = None,
    retry: tuple[type[BaseException], ...] = (),
    what: str = "the condition",
) -> T:
    """``eventually`` for synchronous code: the thread sleeps between the tries."""
    polling = _Polling(what, timeout, interval, max_interval, retry)
    while True:
        try:
            value = probe()
        except retry as error:
            polling.last = error
        else:
            if until(value):
                return value
            polling.last = value
        time.sleep(polling.give_up_or_pause())
