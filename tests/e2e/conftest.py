"""The whole system as real processes, shared by the end-to-end tests of this package; and a
browser for the tests of its pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.support.browser import chromium
from tests.support.infra import Infra
from tests.support.system import System, start_system


@pytest.fixture(scope="package")
async def system(infra: Infra) -> AsyncIterator[System]:
    running = await start_system(infra)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched
