"""The short version of ``make chaos``: two of its scenarios, at a low rate, reconciled.

Orders flow through their whole life while a real process is killed; afterwards every order
of the scenario is reconciled against the topics and every service's database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bench.chaos import FAULTS, run_scenario
from tests.support.infra import Infra
from tests.support.system import System, start_system

pytestmark = pytest.mark.fault


@pytest.fixture(scope="module")
async def chaos_system(infra: Infra) -> AsyncIterator[System]:
    running = await start_system(infra, env={"kitchen": {"KITCHEN_CAPACITY": "100000"}})
    try:
        yield running
    finally:
        running.stop()


def assert_nothing_lost_or_doubled(result: dict[str, object]) -> None:
    assert result["gave_up"] == 0, result
    assert result["events_lost"] == 0, result
    assert result["effects_doubled"] == 0, result
    assert result["reconciled_orders"] == result["orders"], result
    assert result["recovery_seconds"] is not None, result


async def test_broker_killed_while_orders_flow(infra: Infra, chaos_system: System) -> None:
    if not infra.can_control_kafka:
        pytest.fail("this test kills the broker: it needs TEST_INFRA=local")
    result = await run_scenario(
        chaos_system,
        infra,
        FAULTS["kafka"],
        rate=4,
        warm_seconds=3,
        fault_seconds=5,
        after_seconds=5,
    )
    assert_nothing_lost_or_doubled(result)
    # The outbox is why: the orders API kept accepting orders while Kafka was gone.
    assert result["accepted_during_fault"] > 0, result


async def test_kitchen_killed_while_orders_flow(infra: Infra, chaos_system: System) -> None:
    result = await run_scenario(
        chaos_system,
        infra,
        FAULTS["kitchen"],
        rate=4,
        warm_seconds=3,
        fault_seconds=3,
        after_seconds=5,
    )
    assert_nothing_lost_or_doubled(result)
    assert result["accepted_during_fault"] > 0, result
