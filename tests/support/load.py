"""HTTP load: an open model at a fixed arrival rate, and a closed model at a fixed concurrency.

The fixed-rate generator measures every request from the moment it was *due*, not from when it
was sent: if the server stalls, the requests that should have gone out meanwhile count the stall
in their latency (no coordinated omission, the flaw of closed-loop tools that only send when the
previous answer arrived).
"""

from __future__ import annotations

import asyncio
import json as json_module
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

# One "operation" of a load run: a few HTTP calls; returns what the caller wants to keep.
Operation = Callable[["Http", "Timing"], Awaitable[Any]]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # the JSON document, or None
    text: str


class Http:
    """A JSON client for load runs, on aiohttp: thousands of requests in flight cost little
    (httpx's pool, tried first, spent the load generator's CPU matching requests to
    connections and starved the system under test of requests)."""

    def __init__(self, base_url: str, connections: int = 256, timeout: float = 30) -> None:
        self._base_url = base_url.rstrip("/")
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        async with self._session.request(
            method, self._base_url + path, json=json, headers=headers
        ) as response:
            text = await response.text()
            try:
                body = json_module.loads(text) if text else None
            except ValueError:  # an error page: the status and text say what happened
                body = None
            return Reply(response.status, body, text)

    async def post(
        self, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        return await self.request("POST", path, json=json, headers=headers)

    async def get(self, path: str, *, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", path, headers=headers)

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


# Errors a load run counts as a failed request rather than a failed run.
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)


def failure_kind(error: BaseException) -> str:
    """What a transport error says about the server: nothing listening ("refused"), a
    connection dropped with the request in hand ("cut"), or no answer in time ("timeout")."""
    if isinstance(error, aiohttp.ClientConnectorError):
        return "refused"
    if isinstance(error, asyncio.TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ClientError):
        return "cut"
    return type(error).__name__


@dataclass
class Timing:
    """What one operation recorded: its due time, the wall clock of each response, and the
    failed attempts it retried."""

    due: float  # perf_counter() when the operation was due
    responses: dict[str, float] = field(default_factory=dict)  # step -> time.time() at response
    finished: float = 0.0  # perf_counter() when the operation completed
    # (step, kind) -> attempts that failed so: refused or cut connections, 5xx, 429...
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)

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


async def fixed_rate(
    http: Http,
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
        except Exception as error:  # a failed request is a result, reported
            errors.append(f"{type(error).__name__}: {error}")

    start = time.perf_counter()
    try:
        for i in range(total):
            if stop is not None and stop.is_set():
                break
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(Timing(due=due))))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # a run cut short (cancelled, timed out) leaves nothing running
            task.cancel()
    return RunResult(timings, results, errors, time.perf_counter() - start)


async def fixed_concurrency(
    http: Http, operation: Operation, *, workers: int, seconds: float
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
            except Exception as error:  # a failed request is a result, reported
                errors.append(f"{type(error).__name__}: {error}")
                continue
            timing.finished = time.perf_counter()
            timings.append(timing)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return RunResult(timings, results, errors, time.perf_counter() - start)
