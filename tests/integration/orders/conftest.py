"""Fixtures of the orders tests: the orders API in-process, and for sign-in a notifications
service (a real process) that sends codes to in-test sinks (the harness: tests/support/orders.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from tests.support.infra import Infra
from tests.support.notifications import Notifications, Sinks, notifications_under_test, start_sinks
from tests.support.orders import OrdersApi, SignedInApi, consuming_orders_app, orders_app
from tests.support.system import SIGN_IN_TOKEN


@pytest.fixture
async def orders_api(infra: Infra) -> AsyncIterator[OrdersApi]:
    async with orders_app(infra) as api:
        yield api


@pytest.fixture
async def consuming_orders_api(
    infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OrdersApi]:
    """The orders API with its kitchen-event consumer in a group of its own, from "now"."""
    monkeypatch.setenv("ORDERS_CONSUMER_AUTO_OFFSET_RESET", "latest")
    async with consuming_orders_app(infra) as api:
        yield api


@pytest.fixture(scope="module")
async def code_sinks() -> AsyncIterator[Sinks]:
    sinks = await start_sinks()
    try:
        yield sinks
    finally:
        await sinks.stop()


@pytest.fixture(scope="module")
async def code_notifications(infra: Infra, code_sinks: Sinks) -> AsyncIterator[Notifications]:
    """A notifications service that sends the codes of this module's orders APIs."""
    service = await notifications_under_test(
        infra, code_sinks, {"NOTIFICATIONS_SIGN_IN_TOKEN": SIGN_IN_TOKEN}
    )
    await service.start()
    try:
        yield service
    finally:
        assert service.process is not None
        service.process.terminate()


@pytest.fixture
def signing_in(infra: Infra, code_sinks: Sinks, code_notifications: Notifications) -> SignedInApi:
    """``async with signing_in(**settings) as api``: an orders API whose codes arrive."""

    def make(**settings: Any) -> AbstractAsyncContextManager[OrdersApi]:
        return orders_app(
            infra,
            sinks=code_sinks,
            notifications_url=code_notifications.base_url,
            notifications_token=SIGN_IN_TOKEN,
            **settings,
        )

    return make


@pytest.fixture
async def customers_api(signing_in: SignedInApi) -> AsyncIterator[OrdersApi]:
    async with signing_in() as api:
        yield api
