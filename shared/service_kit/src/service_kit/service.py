"""What every service process shares: its command line and running a consumer beside the API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from eventing.consumer import EventConsumer, Subscription, TombstoneSubscription
from eventing.database import create_engine, session_factory
from eventing.logs import configure_logging
from eventing.migrations import upgrade
from eventing.relay import run_relay
from eventing.settings import ConsumerSettings, RelaySettings
from eventing.topics import Topology
from eventing.tracing import configure_tracing
from service_kit.auth import AuthSettings, TokenVerifier
from service_kit.http import database_check, kafka_check, operations_router
from service_kit.limits import StreamSlots
from service_kit.settings import ServiceSettings
from service_kit.workers import note_restart, serve

log = logging.getLogger("service_kit.service")


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


Service = TypeVar("Service", bound="ConsumingService")


@dataclass
class ConsumingService:
    """What a service that reacts to events is built from: its database and its consumer."""

    settings: ServiceSettings
    engine: AsyncEngine  # the HTTP API's
    sessions: async_sessionmaker[AsyncSession]
    consumer: EventConsumer
    # The consumer's own pool: a flood of HTTP requests (clients polling, retrying) can take
    # every API connection, and must not stop the service from applying events.
    consumer_engine: AsyncEngine
    token_verifier: TokenVerifier

    @classmethod
    def build(
        cls: type[Service],
        settings: ServiceSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        topology: Topology,
        subscriptions: Sequence[Subscription],
        consumer_settings: ConsumerSettings,
        tombstones: Sequence[TombstoneSubscription] = (),
        dead_letter_topics: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> Service:
        """Build the common parts; ``extra`` fills the fields a subclass adds (outbox, ...)."""
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name=settings.service_name,
        )
        consumer_engine = create_engine(
            settings.database_url,
            pool_size=settings.consumer_database_pool_size,
            application_name=f"{settings.service_name}-consumer",
        )
        consumer = EventConsumer(
            group_id=group_id,
            topics=topics,
            subscriptions=subscriptions,
            sessions=session_factory(consumer_engine),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topology=topology,
            security=settings.kafka_security,
            settings=consumer_settings,
            tombstones=tombstones,
            dead_letter_topics=dead_letter_topics,
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            consumer=consumer,
            consumer_engine=consumer_engine,
            token_verifier=TokenVerifier(AuthSettings(), audience=settings.audience),
            **extra,
        )

    async def readiness(self) -> tuple[bool, str]:
        return self.consumer.ready()


def consuming_lifespan(
    build: Callable[[], ConsumingService],
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that builds the service, serves its health endpoints, and consumes."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = build()
        app.state.service = service
        app.state.max_waiting_requests = service.settings.http_max_waiting_requests or None
        app.state.max_body_bytes = service.settings.http_max_body_bytes
        app.state.stream_slots = StreamSlots(service.settings.http_max_streams)
        app.state.token_verifier = service.token_verifier
        app.include_router(
            operations_router(
                {
                    "database": database_check(service.engine),
                    "kafka": kafka_check(
                        service.settings.kafka_bootstrap_servers,
                        security=service.settings.kafka_security,
                    ),
                    "consumer": service.readiness,
                }
            )
        )
        try:
            async with consuming(service.consumer):
                yield
        finally:
            await service.engine.dispose()
            await service.consumer_engine.dispose()

    return lifespan


async def _service(request: Request) -> Any:
    return request.app.state.service


# The service a request is served by, as its own class: ``service: ServiceDep[OrdersService]``.
ServiceDep = Annotated[Service, Depends(_service)]


# sysexits.h's EX_CONFIG: deploy/local/supervise.sh does not restart a process that ends with it,
# since no restart mends a configuration.
EXIT_CONFIGURATION_ERROR = 78


def _checked_settings(
    name: str, command: str, settings: Callable[[], ServiceSettings]
) -> ServiceSettings:
    """The settings, every one checked before anything starts; a refusal ends the process
    with its reasons and EXIT_CONFIGURATION_ERROR instead of a traceback."""
    try:
        config = settings()
        refusals: list[str] = []
        if command == "serve":
            # Read here, once, so that a service never serves with untrusted token settings.
            refusals = config.refusals(AuthSettings())
    except ValidationError as error:
        refusals = [
            f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: {problem['msg']}"
            for problem in error.errors()
        ]
    if refusals:
        sys.stderr.write(
            f"{name} {command}: refusing to start:\n"
            + "".join(f"  - {refusal}\n" for refusal in refusals)
        )
        raise SystemExit(EXIT_CONFIGURATION_ERROR)
    return config


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
    commands = ["serve", "migrate"] + (["relay"] if relay_settings is not None else [])
    parser = argparse.ArgumentParser(prog=name)
    parser.add_argument("command", choices=commands)
    parser.add_argument("--log-format", choices=["json", "text"], default="json")
    args = parser.parse_args(argv)
    config = _checked_settings(name, args.command, settings)
    configure_logging(name, config.log_level, fmt=args.log_format)
    configure_tracing(f"{name}-relay" if args.command == "relay" else name)
    if args.command == "migrate":
        note_restart(os.environ)
        upgrade(config.database_url, migrations)
    elif args.command == "relay":
        assert relay_settings is not None
        note_restart(os.environ)
        asyncio.run(
            run_relay(
                config.asyncpg_dsn,
                config.kafka_bootstrap_servers,
                relay_settings(),
                service_name=name,
                security=config.kafka_security,
            )
        )
    else:
        # The restart is noted by the process that serves (with workers, by one of them).
        serve(name, app, config, log_format=args.log_format)
    return 0
