"""HTTP load: an open model at a fixed arrival rate, and a closed model at a fixed concurrency.

The fixed-rate generator measures every request from the moment it was *due*, not from when it
was sent: if the server stalls, the requests that should have gone out meanwhile count the stall
in their latency (no coordinated omission, the flaw of closed-loop tools that only send when the
previous answer arrived).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# One "operation" of a load run: a few HTTP calls; returns what the caller wants to keep.
Operation = Callable[[httpx.AsyncClient, "Timing"], Awaitable[Any]]


@dataclass
class Timing:
    """What one operation recorded: its due time and the wall clock of each response."""

    due: float  # perf_counter() when the operation was due
    responses: dict[str, float] = field(default_factory=dict)  # step -> time.time() at response
    finished: float = 0.0  # perf_counter() when the operation completed

    def answered(self, step: str) -> None:
        self.responses[step] = time.time()

    @property
    def latency(self) -> float:
        return self.finished - self.due


@dataclass
class RunResult:
    timings: list[Timing]
    results: list[Any]
    errors: list[str]
    elapsed: float

    @property
    def rate(self) -> float:
        return len(self.timings) / self.elapsed


def client(base_url: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=30,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def fixed_rate(
    http: httpx.AsyncClient,
    operation: Operation,
    *,
    rate: float,
    seconds: float,
    stop: asyncio.Event | None = None,
) -> RunResult:
    """Start ``rate`` operations per second for ``seconds`` (or until ``stop``), on schedule."""
    total = int(rate * seconds)
    timings: list[Timing] = []
    results: list[Any] = []
    errors: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    async def one(timing: Timing) -> None:
        try:
            results.append(await operation(http, timing))
            timing.finished = time.perf_counter()
            timings.append(timing)
        except Exception as error:  # noqa: BLE001 - a failed request is a result, reported
            errors.append(f"{type(error).__name__}: {error}")

    start = time.perf_counter()
    for i in range(total):
        if stop is not None and stop.is_set():
            break
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(Timing(due=due))))
    await asyncio.gather(*tasks)
    return RunResult(timings, results, errors, time.perf_counter() - start)


async def fixed_concurrency(
    http: httpx.AsyncClient, operation: Operation, *, workers: int, seconds: float
) -> RunResult:
    """``workers`` loops, each starting its next operation when the previous one answered."""
    timings: list[Timing] = []
    results: list[Any] = []
    errors: list[str] = []
    start = time.perf_counter()
    stop_at = start + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            timing = Timing(due=time.perf_counter())
            try:
                results.append(await operation(http, timing))
            except Exception as error:  # noqa: BLE001 - a failed request is a result, reported
                errors.append(f"{type(error).__name__}: {error}")
                continue
            timing.finished = time.perf_counter()
            timings.append(timing)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return RunResult(timings, results, errors, time.perf_counter() - start)
