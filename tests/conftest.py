"""Fixtures shared by every layer of the suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.infra import Infra, start_infra
from tests.support.processes import kill_leftovers

# Outside development the services refuse the public development secret and sinks (fail closed);
# the suite runs on this machine's own stack, and the processes it starts inherit this.
os.environ["AUTH_ENVIRONMENT"] = "development"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """Running Kafka and PostgreSQL (see tests/support/infra.py for the three modes)."""
    running = start_infra()
    try:
        yield running
    finally:
        kill_leftovers()
        running.stop()
