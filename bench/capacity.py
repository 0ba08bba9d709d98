"""Whole-lifecycle capacity, by a step test: the highest steady rate at which every order goes
through its whole life (place, confirm, start, ready, departure, delivery) with each step's p99
within 250 ms.

Each step offers one rate for a while (open loop: orders start on schedule, each step timed from
when it was due), waits for every order to complete and the system to settle (notifications
sent, outboxes empty, consumers caught up), and divides the CPU every component used meanwhile
by the orders completed: the CPU an order costs, all of its work included. The steps stop at
the first that fails; the capacity is the highest rate that passed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.lifecycles import start_lifecycles, step_summaries
from bench.orders_load import cpu_meter
from bench.stats import latency_summary_ms
from tests.support.chaos import wait_settled
from tests.support.infra import Infra
from tests.support.load import Http
from tests.support.system import System

RATES = (2, 5, 10, 20, 30, 40, 60, 83)  # orders/s; 83 is the target's 24 ms of CPU per order
STEP_P99_LIMIT_MS = 250.0
# Not the system: what drives and watches it.
BESIDE_THE_SYSTEM = ("load generator", "notification sinks", "profiler", "other")


async def one_step(
    system: System,
    infra: Infra,
    *,
    rate: float,
    seconds: float,
    patience: float,
    idle: dict[str, float],
) -> dict[str, Any]:
    meter = cpu_meter(infra)
    meter.start()
    began = time.perf_counter()
    async with (
        Http(system.url("orders"), connections=1024) as orders,
        Http(system.url("kitchen"), connections=512) as kitchen,
    ):
        # A step waiting for an event is asked again every 50 ms, not after a doubling pause:
        # a wait of 60 ms would show as 150 ms, and the limit is 250 ms.
        load = start_lifecycles(
            orders,
            kitchen,
            rate=rate,
            seconds=seconds,
            patience=patience,
            max_retry_interval=0.05,
        )
        run = await load.task
    settled = await wait_settled(system, infra, timeout=120)
    wall = time.perf_counter() - began
    cpu_seconds = meter.seconds()
    expected = int(rate * seconds)
    completed = len(run.timings)
    steps = step_summaries(run, load.wall_offset)
    worst = max((s["p99_ms"] for s in steps.values()), default=None)
    failures = []
    if run.errors:
        failures.append(f"{len(run.errors)} lifecycles gave up")
    if completed < expected:
        failures.append(f"{completed} of {expected} lifecycles completed")
    if worst is None or worst > STEP_P99_LIMIT_MS:
        failures.append(f"a step's p99 was {worst} ms")
    if not settled:
        failures.append("the system did not settle within 120 s")
    per_order = {
        name: round(1000 * s / completed, 1) if completed else None
        for name, s in cpu_seconds.items()
    }
    system_ms = sum(
        ms for name, ms in per_order.items() if ms is not None and name not in BESIDE_THE_SYSTEM
    )
    # What the orders cost beyond what the system spends anyway in that time.
    idle_seconds = wall * sum(c for name, c in idle.items() if name not in BESIDE_THE_SYSTEM)
    system_seconds = sum(s for name, s in cpu_seconds.items() if name not in BESIDE_THE_SYSTEM)
    return {
        "target_orders_per_second": rate,
        "seconds": seconds,
        "passed": not failures,
        "failures": failures,
        "lifecycles_expected": expected,
        "lifecycles_completed": completed,
        "lifecycles_gave_up": len(run.errors),
        "first_errors": run.errors[:3],
        # Completed over the time from the first order due to the last one delivered.
        "achieved_orders_per_second": round(completed / run.elapsed, 1),
        "lifecycle_latency": latency_summary_ms([t.latency for t in run.timings])
        if run.timings
        else {},
        "steps": steps,
        "worst_step_p99_ms": worst,
        "cpu_wall_seconds": round(wall, 1),
        "cores": {name: round(s / wall, 3) for name, s in cpu_seconds.items()},
        "cpu_ms_per_order": per_order,
        "system_cpu_ms_per_order": round(system_ms, 1),
        "system_cpu_ms_per_order_above_idle": round(
            1000 * (system_seconds - idle_seconds) / completed, 1
        )
        if completed
        else None,
    }


async def idle_cores(infra: Infra, seconds: float = 10) -> dict[str, float]:
    """Cores per component with no orders coming (the system settled)."""
    meter = cpu_meter(infra)
    meter.start()
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    wall = time.perf_counter() - began
    return {name: round(s / wall, 3) for name, s in meter.seconds().items()}


async def step_test(
    system: System,
    infra: Infra,
    *,
    rates: Sequence[float] = RATES,
    seconds: float = 30,
    patience: float = 60,
) -> dict[str, Any]:
    idle = await idle_cores(infra)
    print(f"capacity: idle, the system uses {idle}", file=sys.stderr)
    steps: list[dict[str, Any]] = []
    for rate in rates:
        print(f"capacity step: {rate} orders/s for {seconds} s", file=sys.stderr)
        step = await one_step(
            system, infra, rate=rate, seconds=seconds, patience=patience, idle=idle
        )
        steps.append(step)
        print(
            f"capacity step {rate}/s: {'passed' if step['passed'] else 'failed'} "
            f"{step['failures']}, achieved {step['achieved_orders_per_second']}/s, worst step p99 "
            f"{step['worst_step_p99_ms']} ms, system CPU {step['system_cpu_ms_per_order']} ms "
            "per order",
            file=sys.stderr,
        )
        if not step["passed"]:
            break
    passed = [step for step in steps if step["passed"]]
    # CPU per order where the system was busiest and still kept up; else at the first step.
    measured = passed[-1] if passed else steps[0]
    return {
        "orders_per_second": passed[-1]["target_orders_per_second"] if passed else 0,
        "step_p99_limit_ms": STEP_P99_LIMIT_MS,
        # What the system spends doing nothing (polls, heartbeats): part of every step's CPU.
        "idle_cores": idle,
        "seconds_per_step": seconds,
        "cpu_measured_at_orders_per_second": measured["target_orders_per_second"],
        "cpu_ms_per_order": measured["cpu_ms_per_order"],
        "system_cpu_ms_per_order": measured["system_cpu_ms_per_order"],
        "system_cpu_ms_per_order_above_idle": measured["system_cpu_ms_per_order_above_idle"],
        "steps": steps,
    }
