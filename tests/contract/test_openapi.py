"""Every service's OpenAPI document holds: schemathesis, every check, every phase, 0 failures.

Each service runs as a real process on a freshly migrated database (and its consumer on the
real broker), so what schemathesis sees is what a client would. The consumer services first
read a few orders' lives from topics of their own, so their answers hold real tickets,
messages and facts, not only empty lists.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from contracts.topics import CUSTOMER_CONTACTS, KITCHEN, ORDERS
from service_kit.auth import Role
from tests.support.analytics import generate, publish
from tests.support.contract import run_schemathesis, staff_token
from tests.support.eventing import create_topic, unique_prefix
from tests.support.infra import Infra
from tests.support.processes import LOG_DIR, ServiceProcess, base_url, free_port, service_process
from tests.support.system import SIGN_IN_TOKEN, migrated_database

SEEDED_ORDERS = 12
# Cases per operation and phase for the consumer services: all three runs together take about
# three minutes on a 2-core machine (docs/development.md "Tests").
MAX_EXAMPLES = 50


def started(infra: Infra, service: str, env: dict[str, str]) -> ServiceProcess:
    url = asyncio.run(migrated_database(infra, service))
    process = service_process(infra, service, url, env)
    process.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(process.ready_url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or not process.alive:
            process.terminate()
            raise RuntimeError(f"{service} did not start:\n{process.log_tail()}")
        time.sleep(0.2)


ORDERS_STAFF = staff_token(Role.MANAGER, Role.CHEF, Role.DRIVER)


@contextmanager
def sinks() -> Iterator[dict[str, str]]:
    """The development SMTP and SMS sinks as a process of their own (schemathesis has codes
    sent for real); yields the notifications service's settings that reach them."""
    smtp, sms = free_port(), free_port()
    directory = LOG_DIR / f"contract-sinks-{time.time_ns()}"
    log = (LOG_DIR / "contract-sinks.log").open("ab")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "notifications.adapters.sinks"),
            *("--smtp-port", str(smtp), "--sms-port", str(sms), "--dir", str(directory)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        for port in (smtp, sms):
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the sinks did not start: see contract-sinks.log")
                time.sleep(0.1)
        yield {
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(smtp),
            "NOTIFICATIONS_SMS_ENDPOINT_URL": f"http://127.0.0.1:{sms}/2010-04-01/Accounts/"
            "{account_sid}/Messages.json",
        }
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def orders(infra: Infra) -> Iterator[ServiceProcess]:
    # Sign-in codes go out through a notifications service (and its sinks), as on the stack.
    with sinks() as providers:
        notifications = started(
            infra,
            "notifications",
            {
                **consumer_env("notifications"),
                **providers,
                "NOTIFICATIONS_SIGN_IN_TOKEN": SIGN_IN_TOKEN,
            },
        )
        process = started(
            infra,
            "orders",
            {
                "ORDERS_CONSUMER_GROUP": f"contract-{time.time_ns()}",
                # The limits stay on (their 429 is part of the contract) but far above the rate
                # schemathesis sends at, so it tests placement and sign-in, not the limiter.
                "ORDERS_PLACEMENTS_PER_CLIENT": "100000/minute",
                "ORDERS_PLACEMENTS_PER_CONTACT": "100000/minute",
                "ORDERS_SIGN_IN_CODES_PER_CLIENT": "100000/minute",
                "ORDERS_SIGN_IN_CODES_PER_CONTACT": "100000/minute",
                "ORDERS_SIGN_IN_ATTEMPTS_PER_CLIENT": "100000/minute",
                # Inbound CloudEvents authenticate with a bearer token of their own; making it
                # the staff token lets the one Authorization header schemathesis sends serve both.
                "ORDERS_INBOUND_BEARER_TOKEN": ORDERS_STAFF,
                "ORDERS_NOTIFICATIONS_URL": base_url(notifications),
                "ORDERS_NOTIFICATIONS_TOKEN": SIGN_IN_TOKEN,
            },
        )
        try:
            yield process
        finally:
            process.terminate()
            notifications.terminate()


def test_the_orders_api_keeps_its_contract(orders: ServiceProcess) -> None:
    run_schemathesis("orders", base_url(orders), token=ORDERS_STAFF)


def seeded_topics(infra: Infra) -> str:
    """Topics of this test's own (the returned prefix + each name) holding the whole lives of
    ``SEEDED_ORDERS`` orders, as the orders service and the kitchen publish them."""

    async def seed() -> str:
        prefix = unique_prefix()
        for topic in (ORDERS, KITCHEN, CUSTOMER_CONTACTS):
            await create_topic(infra, prefix + topic.name, topic.partitions)
        await publish(infra.kafka_bootstrap, generate(SEEDED_ORDERS), topic_prefix=prefix)
        return prefix

    return asyncio.run(seed())


def until_answered(
    process: ServiceProcess, path: str, token: str, done: Callable[[object], bool]
) -> None:
    """Wait until the service has read the seeded events (its answer at ``path`` says so)."""
    deadline = time.monotonic() + 60
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        answer = httpx.get(base_url(process) + path, headers=headers, timeout=5)
        if answer.status_code == 200 and done(answer.json()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: {answer.status_code} {answer.text[:500]}")
        time.sleep(0.2)


def consumer_env(service: str) -> dict[str, str]:
    return {
        f"{service.upper()}_CONSUMER_GROUP": f"contract-{service}-{time.time_ns()}",
        f"{service.upper()}_CONSUMER_AUTO_OFFSET_RESET": "earliest",
    }


@pytest.fixture
def kitchen(infra: Infra) -> Iterator[ServiceProcess]:
    prefix = seeded_topics(infra)
    process = started(
        infra,
        "kitchen",
        {
            **consumer_env("kitchen"),
            "KITCHEN_ORDERS_TOPIC": prefix + ORDERS.name,
            "KITCHEN_OUTBOX_TOPIC_PREFIX": prefix,
            # /queue/stream never ends by itself; schemathesis reads each response whole, so
            # each stream ends after half a second (the display reconnects the same way).
            "KITCHEN_STREAM_MAX_SECONDS": "0.5",
        },
    )
    try:
        until_answered(process, "/tickets", staff_token(Role.CHEF), bool)
        yield process
    finally:
        process.terminate()


# A manager who is also a customer (of no orders): the /customers/me routes answer too.
NOTIFICATIONS_STAFF = staff_token(Role.MANAGER, Role.CUSTOMER)


@pytest.fixture
def notifications(infra: Infra) -> Iterator[ServiceProcess]:
    prefix = seeded_topics(infra)
    with sinks() as providers:
        process = started(
            infra,
            "notifications",
            {
                **consumer_env("notifications"),
                **providers,
                "NOTIFICATIONS_ORDERS_TOPIC": prefix + ORDERS.name,
                "NOTIFICATIONS_KITCHEN_TOPIC": prefix + KITCHEN.name,
                "NOTIFICATIONS_CONTACTS_TOPIC": prefix + CUSTOMER_CONTACTS.name,
                "NOTIFICATIONS_DISPATCHER_POLL_SECONDS": "0.1",
                # POST /sign-in-codes takes a bearer token of its own; the staff token, so that
                # the one Authorization header schemathesis sends serves both schemes.
                "NOTIFICATIONS_SIGN_IN_TOKEN": NOTIFICATIONS_STAFF,
            },
        )
        try:
            # In-app messages are written by their dispatcher; no contact details are needed.
            until_answered(
                process,
                "/deliveries?channel=in_app&status=sent",
                NOTIFICATIONS_STAFF,
                lambda sent: isinstance(sent, list) and len(sent) >= SEEDED_ORDERS,
            )
            yield process
        finally:
            process.terminate()


@pytest.fixture
def analytics(infra: Infra) -> Iterator[ServiceProcess]:
    prefix = seeded_topics(infra)
    process = started(
        infra, "analytics", {**consumer_env("analytics"), "ANALYTICS_TOPIC_PREFIX": prefix}
    )
    try:
        until_answered(
            process,
            "/overview",
            staff_token(Role.ANALYST),
            lambda overview: isinstance(overview, dict) and overview["orders"] == SEEDED_ORDERS,
        )
        yield process
    finally:
        process.terminate()


def test_the_kitchen_api_keeps_its_contract(kitchen: ServiceProcess) -> None:
    token = staff_token(Role.CHEF, Role.MANAGER)
    run_schemathesis("kitchen", base_url(kitchen), token=token, max_examples=MAX_EXAMPLES)


def test_the_notifications_api_keeps_its_contract(notifications: ServiceProcess) -> None:
    run_schemathesis(
        "notifications",
        base_url(notifications),
        token=NOTIFICATIONS_STAFF,
        max_examples=MAX_EXAMPLES,
    )


def test_the_analytics_api_keeps_its_contract(analytics: ServiceProcess) -> None:
    token = staff_token(Role.ANALYST)
    run_schemathesis("analytics", base_url(analytics), token=token, max_examples=MAX_EXAMPLES)
