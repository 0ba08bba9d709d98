"""The whole system as real processes on the test infrastructure, for end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from eventing.migrations import upgrade
from tests.support.infra import ROOT, Infra
from tests.support.notifications import FAST, Sinks, start_sinks
from tests.support.processes import (
    TEST_LOG_DIR,
    ServiceProcess,
    base_url,
    relay_process,
    service_process,
)

SERVICES = ("orders", "kitchen", "notifications", "analytics")
RELAYS = ("orders-relay", "kitchen-relay")
PROCESSES = (*SERVICES, *RELAYS)  # the names of the processes, and of their log files
# What the orders service presents to notifications to have sign-in codes sent.
SIGN_IN_TOKEN = "test-sign-in-token-of-at-least-32-bytes"


def migrations_of(service: str) -> Path:
    return ROOT / "services" / service / "src" / service / "migrations"


async def migrated_database(infra: Infra, service: str) -> str:
    """A fresh database of ``service``'s own role with its migrations applied (as that role,
    so the role owns its tables); returns its URL, the role's.

    Alembic's ``context`` and ``op`` are process-wide proxies: run one migration at a time.
    """
    url = await infra.create_database(service, owner=service)
    await asyncio.to_thread(upgrade, url, migrations_of(service))
    return url


@dataclass
class System:
    databases: dict[str, str]
    processes: dict[str, ServiceProcess]
    # Notifications' SMTP server and SMS receiver, in the test process.
    sinks: Sinks | None = field(default=None)

    def url(self, name: str) -> str:
        return base_url(self.processes[name])

    async def start(self) -> None:
        for process in self.processes.values():
            process.start()
        await asyncio.gather(*(process.wait_ready() for process in self.processes.values()))

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        if self.sinks is not None:
            self.sinks.close()


async def start_system(
    infra: Infra,
    env: Mapping[str, Mapping[str, str]] | None = None,
    *,
    database_port: int | None = None,
    kafka_bootstrap: str | None = None,
    log_dir: Path = TEST_LOG_DIR,
) -> System:
    """Every service and both relays on fresh databases, each under a supervisor as on the local
    stack; ``env`` adds variables per process (a service's name, or ``orders-relay`` /
    ``kitchen-relay``). With ``database_port`` and ``kafka_bootstrap`` the processes reach
    PostgreSQL and Kafka there (a fault proxy) instead of directly; the databases' URLs in
    ``System.databases`` stay direct, for the test's own queries. The processes write their
    logs to ``log_dir``."""
    databases = {service: await migrated_database(infra, service) for service in SERVICES}
    sinks = await start_sinks()
    extra_env: dict[str, dict[str, str]] = {"notifications": {**sinks.env(), **FAST}}
    for service in SERVICES:
        for name in (service, f"{service}-relay"):
            routed = extra_env.setdefault(name, {})
            if database_port is not None:
                direct = urlsplit(databases[service])
                netloc = direct.netloc.replace(f":{direct.port}", f":{database_port}")
                routed[f"{service.upper()}_DATABASE_URL"] = direct._replace(netloc=netloc).geturl()
            if kafka_bootstrap is not None:
                routed["KAFKA_BOOTSTRAP_SERVERS"] = kafka_bootstrap
    for name in PROCESSES:
        # Each process as its own Kafka principal, with only its own ACLs: as deployed.
        extra_env.setdefault(name, {}).update(infra.principal_env(name))
    # Customers sign in with codes the orders service sends through notifications.
    extra_env["notifications"]["NOTIFICATIONS_SIGN_IN_TOKEN"] = SIGN_IN_TOKEN
    extra_env.setdefault("orders", {})["ORDERS_NOTIFICATIONS_TOKEN"] = SIGN_IN_TOKEN
    for name, variables in (env or {}).items():
        extra_env[name] = {**extra_env.get(name, {}), **variables}
    processes = {
        service: service_process(
            infra,
            service,
            databases[service],
            extra_env.get(service),
            supervised=True,
            log_dir=log_dir,
        )
        for service in SERVICES
    }
    processes["orders"].env.setdefault(
        "ORDERS_NOTIFICATIONS_URL", base_url(processes["notifications"])
    )
    for relay in RELAYS:
        service = relay.removesuffix("-relay")
        processes[relay] = relay_process(
            infra,
            databases[service],
            name=relay,
            service=service,
            extra_env=extra_env.get(relay),
            supervised=True,
            log_dir=log_dir,
        )
    system = System(databases, processes, sinks)
    try:
        await system.start()
    except BaseException:
        system.stop()
        raise
    return system
