"""Fixtures of the kitchen tests: a fresh orders topic and the kitchen consuming it (the harness
is tests/support/kitchen.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.infra import Infra
from tests.support.kitchen import KitchenHarness, OrdersTopic, new_orders_topic, running_kitchen


@pytest.fixture
async def orders_topic(infra: Infra) -> OrdersTopic:
    return await new_orders_topic(infra)


@pytest.fixture
async def kitchen(infra: Infra, orders_topic: OrdersTopic) -> AsyncIterator[KitchenHarness]:
    async with running_kitchen(infra, orders_topic) as running:
        yield running
