"""The whole system as real processes, shared by the end-to-end tests of this package."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.infra import Infra
from tests.support.system import System, start_system


@pytest.fixture(scope="package")
async def system(infra: Infra) -> AsyncIterator[System]:
    running = await start_system(infra)
    try:
        yield running
    finally:
        running.stop()
