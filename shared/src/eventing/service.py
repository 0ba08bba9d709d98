"""What every service process shares: its command line and running a consumer beside the API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI

from eventing.consumer import EventConsumer
from eventing.logs import configure_logging
from eventing.migrations import upgrade
from eventing.relay import run_relay
from eventing.settings import RelaySettings, ServiceSettings

log = logging.getLogger("eventing.service")


@contextlib.asynccontextmanager
async def consuming(consumer: EventConsumer) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``consumer`` for the duration of the block; stop it gracefully on exit."""
    task = asyncio.create_task(consumer.run(), name=f"consumer-{consumer.group_id}")
    try:
        yield task
    finally:
        consumer.stop()
        try:
            await asyncio.wait_for(task, timeout=30)
        except TimeoutError:
            log.error("consumer %s did not stop in 30s; cancelled", consumer.group_id)
            task.cancel()


def service_main(
    name: str,
    *,
    settings: Callable[[], ServiceSettings],
    app: Callable[[], FastAPI],
    migrations: Path,
    relay_settings: Callable[[], RelaySettings] | None = None,
    argv: list[str] | None = None,
) -> int:
    """``<service> serve | migrate [| relay]``."""
    import uvicorn

    commands = ["serve", "migrate"] + (["relay"] if relay_settings is not None else [])
    parser = argparse.ArgumentParser(prog=name)
    parser.add_argument("command", choices=commands)
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    args = parser.parse_args(argv)
    config = settings()
    configure_logging(name, config.log_level, fmt=args.log_format)
    if args.command == "migrate":
        upgrade(config.database_url, migrations)
    elif args.command == "relay":
        assert relay_settings is not None
        asyncio.run(
            run_relay(
                config.asyncpg_dsn,
                config.kafka_bootstrap_servers,
                relay_settings(),
                service_name=name,
            )
        )
    else:
        uvicorn.run(
            app(), host=config.http_host, port=config.http_port, log_config=None, access_log=False
        )
    return 0
