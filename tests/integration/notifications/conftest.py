"""Fixtures of the notifications tests: in-test SMTP and SMS sinks and a service under test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.infra import Infra
from tests.support.notifications import Notifications, Sinks, notifications_under_test, start_sinks


@pytest.fixture
async def sinks() -> AsyncIterator[Sinks]:
    running = await start_sinks()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def notifications(infra: Infra, sinks: Sinks) -> AsyncIterator[Notifications]:
    service = await notifications_under_test(infra, sinks)
    try:
        yield service
    finally:
        if service.process is not None:
            service.process.terminate()
