"""``make profile``: where each process of the system spends its CPU while orders go through
their whole life at a steady rate.

    uv run python -m bench.profile [--rate 10] [--seconds 30] [--warm-up 10]

Runs on a stack of its own (``.local/profile-stack``; ``BENCH_PG_PORT`` / ``BENCH_KAFKA_PORT``
move it). After the warm-up, py-spy samples every service and relay process at once for the
measured window (100 Hz, threads holding the GIL only, without pausing the processes), while
the CPU of every component, PostgreSQL and Kafka included, is read from ``/proc``. Writes, in
``docs/perf/``: ``<process>.svg`` (a flame graph), ``<process>.txt`` (the hottest functions),
``<process>.collapsed`` (py-spy's raw stacks, for other tools; not committed) and
``README.md`` (the commit measured, the rate, the window, each component's CPU); the figures
also go to ``bench/results/profile.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import flamegraph
from bench.lifecycles import (
    lifecycle_system,
    orders_worth_between,
    start_lifecycles,
    step_summaries,
)
from bench.orders_load import cpu_meter
from bench.stack import bench_infra, log_dir
from bench.stats import latency_summary_ms
from tests.support import processes
from tests.support.infra import ROOT, Infra
from tests.support.load import Http
from tests.support.sinks import sinks_process
from tests.support.system import PROCESSES, System

PERF = ROOT / "docs" / "perf"
RESULTS = ROOT / "bench" / "results" / "profile.json"
SAMPLE_HZ = 100


def commit() -> dict[str, Any]:
    """The commit measured, and whether the work tree differed from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.rstrip("\n")  # a status line starts with a space: keep it

    changed = [
        line[3:]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
        # What earlier profiles and benchmarks wrote is not what is measured.
        if not line[3:].startswith(("docs/perf/", "bench/results/", "docs/performance.md"))
    ]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "dirty": bool(changed)}


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: uv sync (it is a dev dependency)")
    return found


async def record(pid: int, seconds: float, output: Path, log: Path) -> int:
    """py-spy on ``pid`` for ``seconds``; returns its exit status. (The services run no worker
    processes: uvicorn serves in the process itself.)"""
    with log.open("ab") as out:
        spy = await asyncio.create_subprocess_exec(
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(SAMPLE_HZ),
            "--duration",
            str(round(seconds)),
            "--format",
            "raw",
            "--function",  # one frame per function, not per line: the hot spots add up
            "--nonblocking",  # pausing each process 100 times a second would slow what we measure
            # Samples of threads holding the GIL only: a worker thread waiting on its queue is
            # otherwise sometimes taken for running.
            "--gil",
            "--output",
            str(output),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
        return await spy.wait()


async def profile(
    system: System, infra: Infra, *, rate: float, seconds: float, warm_up: float
) -> dict[str, Any]:
    PERF.mkdir(parents=True, exist_ok=True)
    logs = log_dir("profile")
    found = {name: system.processes[name].service_pid() for name in PROCESSES}
    pids = {name: pid for name, pid in found.items() if pid is not None}
    meter = cpu_meter(infra)
    async with (
        Http(system.url("orders"), connections=256) as orders,
        Http(system.url("kitchen"), connections=128) as kitchen,
    ):
        # The load goes on a little past the window, so the window sees no tail of the run.
        load = start_lifecycles(
            orders, kitchen, rate=rate, seconds=warm_up + seconds + 5, patience=120
        )
        await asyncio.sleep(warm_up)
        meter.start()
        began = time.perf_counter()
        statuses = await asyncio.gather(
            *(
                record(pid, seconds, PERF / f"{name}.collapsed", logs / "py-spy.log")
                for name, pid in pids.items()
            )
        )
        ended = time.perf_counter()
        cpu_seconds = meter.seconds()
        run = await load.task
    window = ended - began
    worth = orders_worth_between(run, load.wall_offset, began, ended)
    components: dict[str, Any] = {}
    for (name, pid), status in zip(pids.items(), statuses, strict=True):
        raw = PERF / f"{name}.collapsed"
        stacks = flamegraph.parse(raw.read_text()) if raw.exists() else {}
        title = f"{name} at {rate:g} orders/s, {window:.0f} s"
        (PERF / f"{name}.svg").write_text(flamegraph.svg(title, stacks))
        (PERF / f"{name}.txt").write_text(flamegraph.summary(title, stacks, SAMPLE_HZ))
        by_own, _ = flamegraph.hottest(stacks, top=5)
        components[name] = {
            "pid": pid,
            "py_spy_status": status,
            "samples": sum(stacks.values()),
            "hottest_own": [{"function": r.function, "samples": r.samples} for r in by_own],
        }
    return {
        "rate_orders_per_second": rate,
        "window_seconds": round(window, 1),
        "warm_up_seconds": warm_up,
        "sample_hz": SAMPLE_HZ,
        "lifecycles_completed": len(run.timings),
        "lifecycles_gave_up": len(run.errors),
        "first_errors": run.errors[:3],
        "orders_worth_in_window": round(worth, 1),
        "cores": {name: round(s / window, 3) for name, s in cpu_seconds.items()},
        "cpu_ms_per_order": {
            name: round(1000 * s / worth, 1) if worth else None for name, s in cpu_seconds.items()
        },
        "lifecycle_latency": latency_summary_ms([t.latency for t in run.timings])
        if run.timings
        else {},
        "steps": step_summaries(run, load.wall_offset),
        "processes": components,
    }


def readme(result: dict[str, Any]) -> str:
    measured = result["commit"]
    dirty = " (with uncommitted changes)" if measured["dirty"] else ""
    total_ms = sum(ms for ms in result["cpu_ms_per_order"].values() if ms is not None)
    lines = [
        "# Flame graphs of the system at load",
        "",
        "Generated by `make profile` (`python -m bench.profile`); do not edit.",
        "",
        f"Commit **{measured['commit']}**{dirty}, measured {result['when']}: orders through their "
        f"whole life (place, confirm, start, ready, departure, delivery) at "
        f"{result['rate_orders_per_second']:g} orders/s, open loop; after "
        f"{result['warm_up_seconds']:g} s of warm-up, a {result['window_seconds']} s window in "
        f"which the steps answered amount to {result['orders_worth_in_window']} whole "
        f"lifecycles ({result['lifecycles_completed']} completed in the run, "
        f"{result['lifecycles_gave_up']} given up). py-spy sampled every service and relay at "
        f"once at {result['sample_hz']} Hz, only threads holding the GIL (so not idle ones), "
        "processes not paused, one frame per function.",
        "",
        "Per process: `<process>.svg` (flame graph: callers below, hover for samples), "
        "`<process>.txt` (the hottest functions), `<process>.collapsed` (the raw stacks, "
        "left on the machine that measured: not committed).",
        "",
        f"CPU over the window, from /proc (the machine has {os.cpu_count()} cores); per order "
        "is CPU seconds over the lifecycles' worth of steps answered in the window:",
        "",
        "| Component | Cores | CPU ms per order |",
        "|---|---|---|",
    ]
    for name, cores in result["cores"].items():
        lines.append(f"| {name} | {cores} | {result['cpu_ms_per_order'][name]} |")
    lines += [f"| **all** | {sum(result['cores'].values()):.2f} | {total_ms:.1f} |", ""]
    steps = result["steps"]
    if steps:
        lines += ["| Step | p50 | p99 | max |", "|---|---|---|---|"]
        for step, summary in steps.items():
            lines.append(
                f"| {step} | {summary['p50_ms']} ms | {summary['p99_ms']} ms "
                f"| {summary['max_ms']} ms |"
            )
        lines.append("")
    lines += ["## Hottest functions (own samples)", ""]
    for name, process in result["processes"].items():
        lines.append(f"**{name}** ({process['samples']} samples):")
        lines.append("")
        for row in process["hottest_own"]:
            share = 100 * row["samples"] / process["samples"] if process["samples"] else 0
            lines.append(f"- {share:.1f}% `{row['function']}`")
        lines.append("")
    return "\n".join(lines)


async def main_async(rate: float, seconds: float, warm_up: float) -> dict[str, Any]:
    measured = commit()
    infra = await bench_infra("profile")
    try:
        sinks = ROOT / ".local" / "profile-stack" / "sinks"
        with sinks_process(sinks, sinks / "sinks.log") as sinks_env:
            system = await lifecycle_system(infra, sinks_env, log_dir("profile"))
            try:
                result = await profile(system, infra, rate=rate, seconds=seconds, warm_up=warm_up)
            finally:
                system.stop()
    finally:
        infra.stop()
        processes.kill_leftovers()
    return {"commit": measured, "when": datetime.now(UTC).isoformat(timespec="seconds"), **result}


def main() -> None:
    parser = argparse.ArgumentParser(prog="profile")
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="the window sampled")
    parser.add_argument("--warm-up", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.rate, args.seconds, args.warm_up))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    (PERF / "README.md").write_text(readme(result))
    print(json.dumps({k: v for k, v in result.items() if k != "processes"}, indent=2))
    print(f"flame graphs and hot spots in {PERF}", file=sys.stderr)


if __name__ == "__main__":
    main()
