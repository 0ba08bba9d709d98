"""The benchmarks' own stacks, beside a ``make up`` stack and the tests' one: each run (bench,
chaos, sustained) has its directory (``.local/<name>-stack``), its ports and its process logs
(``.local/<name>-logs``).

``BENCH_PG_PORT`` and ``BENCH_KAFKA_PORT`` (the controller on the next port) move the stacks of
the runs that name no ports of their own (``make bench``, ``make profile``): for several
checkouts benchmarking on one machine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import asyncpg

from tests.support.infra import ROOT, Infra, start_infra

# What the benchmarks run the system with, beside the test harness's environment: the kitchen
# simulates its queue on capacity slots and nobody cooks, so an ordinary capacity would refuse
# orders at once; notifications polls at its deployed interval, not the tests' quick one.
AS_DEPLOYED = {
    "kitchen": {"KITCHEN_CAPACITY": "100000"},
    "notifications": {"NOTIFICATIONS_DISPATCHER_POLL_SECONDS": "0.5"},
}


def bench_env(extra: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """``AS_DEPLOYED`` with ``extra`` (variables per process) on top."""
    env = {name: dict(variables) for name, variables in AS_DEPLOYED.items()}
    for name, variables in (extra or {}).items():
        env[name] = {**env.get(name, {}), **variables}
    return env


def log_dir(name: str) -> Path:
    """Where the processes of the ``name`` run write their logs."""
    return ROOT / ".local" / f"{name}-logs"


# What every benchmark's PostgreSQL runs with: commit times recorded, for end-to-end latency.
PG_SETTINGS = {"track_commit_timestamp": "on"}


async def bench_infra(
    name: str = "bench",
    *,
    pg_port: int | None = None,
    kafka_port: int | None = None,
    pg_settings: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Infra:
    """A stack of its own (``.local/<name>-stack``, fresh Kafka), PostgreSQL with
    ``PG_SETTINGS`` and ``pg_settings`` (server settings); ``extra_env`` for stack.sh."""
    if pg_port is None:
        pg_port = int(os.environ.get("BENCH_PG_PORT", "25462"))
    if kafka_port is None:
        kafka_port = int(os.environ.get("BENCH_KAFKA_PORT", "29122"))
    infra = start_infra(
        {
            "STACK_DIR": str(ROOT / ".local" / f"{name}-stack"),
            "PG_PORT": str(pg_port),
            "KAFKA_PORT": str(kafka_port),
            "KAFKA_CONTROLLER_PORT": str(kafka_port + 1),
            "PG_EXTRA_OPTIONS": _options({**PG_SETTINGS, **(pg_settings or {})}),
            **(extra_env or {}),
        }
    )
    await with_pg_settings(infra, pg_settings or {})
    return infra


def _options(settings: dict[str, str]) -> str:
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


async def with_pg_settings(infra: Infra, settings: dict[str, str]) -> None:
    """PostgreSQL running with ``PG_SETTINGS`` and ``settings``: restarted with them where the
    running server (started earlier, by another run) has other values; a server setting such as
    ``wal_level`` takes a restart."""
    wanted = {**PG_SETTINGS, **settings}
    infra.local_env["PG_EXTRA_OPTIONS"] = _options(wanted)
    conn = await asyncpg.connect(infra.postgres_dsn)
    try:
        running = {name: await conn.fetchval(f"SHOW {name}") for name in wanted}
    finally:
        await conn.close()
    if running != wanted:
        infra.stack("pg-stop")
        infra.stack("pg-start")
