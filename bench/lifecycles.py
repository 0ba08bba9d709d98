"""Orders through their whole life at a fixed rate, for the profile and the capacity step test:
the system they run on, the open-loop load, and each step's latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import bench_env
from bench.stats import latency_summary_ms
from tests.support.infra import Infra
from tests.support.lifecycle import LIFECYCLE_STEPS, Clients, whole_life
from tests.support.load import Http, RunResult, Timing, fixed_rate
from tests.support.system import System, start_system


async def lifecycle_system(infra: Infra, sinks_env: Mapping[str, str], logs: Path) -> System:
    """The whole system, its notifications sent to sinks in a process of their own."""
    return await start_system(infra, env=bench_env({"notifications": sinks_env}), log_dir=logs)


@dataclass
class LifecycleLoad:
    """A run of whole lives in progress: ``task`` ends with the run's result."""

    task: asyncio.Task[RunResult]
    # time.time() minus time.perf_counter(): due times are on the latter, answers on the former.
    wall_offset: float


def start_lifecycles(
    orders: Http,
    kitchen: Http,
    *,
    rate: float,
    seconds: float,
    patience: float,
    max_retry_interval: float = 1.0,
) -> LifecycleLoad:
    """Start ``rate`` whole lives a second for ``seconds`` (open loop), in the background; a
    step not taken yet is tried again after 50 ms, the pause doubling up to
    ``max_retry_interval``."""
    clients = Clients(orders, kitchen)

    async def operation(_: Http, timing: Timing) -> str:
        return await whole_life(
            clients, timing, patience=patience, max_retry_interval=max_retry_interval
        )

    offset = time.time() - time.perf_counter()
    task = asyncio.create_task(fixed_rate(orders, operation, rate=rate, seconds=seconds))
    return LifecycleLoad(task, offset)


def step_latencies(run: RunResult, wall_offset: float) -> dict[str, list[float]]:
    """Each step's latency, in seconds, from when it was due: the first when the order was due,
    each next one when the previous one was answered (the client sends it then). A step that
    waits for an event (the kitchen's ticket, the order being ready) counts the wait."""
    latencies: dict[str, list[float]] = {step: [] for step in LIFECYCLE_STEPS}
    for timing in run.timings:
        due = timing.due + wall_offset
        for step in LIFECYCLE_STEPS:
            answered = timing.responses.get(step)
            if answered is None:
                break
            latencies[step].append(answered - due)
            due = answered
    return latencies


def step_summaries(run: RunResult, wall_offset: float) -> dict[str, dict[str, Any]]:
    return {
        step: latency_summary_ms(samples)
        for step, samples in step_latencies(run, wall_offset).items()
        if samples
    }


def orders_worth_between(run: RunResult, wall_offset: float, start: float, end: float) -> float:
    """The work done between two ``time.perf_counter()`` readings, in whole lifecycles: the
    steps answered then, over the steps of one lifecycle. Unlike the lifecycles completed
    then, it does not depend on how long each took."""
    low, high = start + wall_offset, end + wall_offset
    answered = sum(
        1 for timing in run.timings for at in timing.responses.values() if low <= at < high
    )
    return answered / len(LIFECYCLE_STEPS)
