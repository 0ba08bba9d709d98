"""Every service's OpenAPI document holds: schemathesis, every check, every phase, 0 failures.

Each service runs as a real process on a freshly migrated database (and its consumer on the
real broker), so what schemathesis sees is what a client would. The consumer services first
read a few orders' lives from topics of their own, so their answers hold real tickets,
messages and facts, not only empty lists.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from contracts.topics import CUSTOMER_CONTACTS, KITCHEN, ORDERS
from service_kit.auth import Role
from tests.support.analytics import generate, publish
from tests.support.contract import run_schemathesis
from tests.support.eventing import create_topic, unique_prefix
from tests.support.infra import Infra
from tests.support.polling import eventually_blocking
from tests.support.processes import TEST_LOG_DIR, ServiceProcess, base_url, service_process
from tests.support.sinks import sinks_process
from tests.support.system import SIGN_IN_TOKEN, migrated_database
from tests.support.tokens import authorization, staff_token

SEEDED_ORDERS = 12
# Cases per operation and phase for the consumer services: all three runs together take about
# three minutes on a 2-core machine (docs/development.md "Tests").
MAX_EXAMPLES = 50


def started(infra: Infra, service: str, env: dict[str, str]) -> ServiceProcess:
    url = asyncio.run(migrated_database(infra, service))
    process = service_process(infra, service, url, env)
    process.start()
    try:
        asyncio.run(process.wait_ready(60))
    except BaseException:
        process.terminate()
        raise
    return process


# One principal holding every role the service knows, so every route is reachable.
TESTER = "contract-tester"
ORDERS_STAFF = staff_token(Role.MANAGER, Role.CHEF, Role.DRIVER, subject=TESTER)


@contextmanager
def sinks() -> Iterator[dict[str, str]]:
    """The development SMTP and SMS sinks as a process of their own (schemathesis has codes
    sent for real); yields the notifications service's settings that reach them."""
    directory = TEST_LOG_DIR / f"contract-sinks-{time.time_ns()}"
    with sinks_process(directory, TEST_LOG_DIR / "contract-sinks.log") as env:
        yield env


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

    def answer() -> tuple[int, object]:
        response = httpx.get(base_url(process) + path, headers=authorization(token), timeout=5)
        ok = response.status_code == 200
        return response.status_code, response.json() if ok else response.text[:500]

    eventually_blocking(
        answer,
        until=lambda status_body: status_body[0] == 200 and done(status_body[1]),
        timeout=60,
        interval=0.2,
        what=f"{path} showing the seeded events",
    )


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
        until_answered(process, "/tickets", staff_token(Role.CHEF, subject=TESTER), bool)
        yield process
    finally:
        process.terminate()


# A manager who is also a customer (of no orders): the /customers/me routes answer too.
NOTIFICATIONS_STAFF = staff_token(Role.MANAGER, Role.CUSTOMER, subject=TESTER)


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
            staff_token(Role.ANALYST, subject=TESTER),
            lambda overview: isinstance(overview, dict) and overview["orders"] == SEEDED_ORDERS,
        )
        yield process
    finally:
        process.terminate()


def test_the_kitchen_api_keeps_its_contract(kitchen: ServiceProcess) -> None:
    token = staff_token(Role.CHEF, Role.MANAGER, subject=TESTER)
    run_schemathesis("kitchen", base_url(kitchen), token=token, max_examples=MAX_EXAMPLES)


def test_the_notifications_api_keeps_its_contract(notifications: ServiceProcess) -> None:
    run_schemathesis(
        "notifications",
        base_url(notifications),
        token=NOTIFICATIONS_STAFF,
        max_examples=MAX_EXAMPLES,
    )


def test_the_analytics_api_keeps_its_contract(analytics: ServiceProcess) -> None:
    token = staff_token(Role.ANALYST, subject=TESTER)
    run_schemathesis("analytics", base_url(analytics), token=token, max_examples=MAX_EXAMPLES)
