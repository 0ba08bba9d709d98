"""The short version of ``make chaos`` and ``make chaos-cluster``: five of their scenarios, at
a low rate, reconciled.

Orders flow through their whole life while a real process is killed (on the cluster also: a
consumer group scaled, every busy partition's leader moved); afterwards every order of the
scenario is reconciled against the topics and every service's database.

The rate is what a 2-core CI machine recovers from with room to spare: these tests prove
nothing is lost or doubled, ``make chaos`` measures how much load a fault can be taken under
(at 4 orders a second, the orders piled up behind a 20-second broker restart kept the machine
saturated by their polling for over a minute).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contracts.topics import KITCHEN, ORDERS
from tests.support.chaos import (
    broker_failover,
    broker_killed,
    killed,
    leader_moved,
    run_scenario,
    scaled,
)
from tests.support.infra import Infra, kafka_cluster
from tests.support.system import System, start_system

pytestmark = pytest.mark.fault

RATE = 2  # orders a second
# Each wait of a scenario (recovery, an order's whole life, settling) gives up after this long,
# so a scenario that does not recover ends with its figures, within the test's timeout.
PATIENCE = 90


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
    assert result["stuck"] is None, result
    assert result["processes_left_down"] == [], result


@pytest.mark.timeout(420)
async def test_broker_killed_while_orders_flow(infra: Infra, chaos_system: System) -> None:
    if not infra.can_control_kafka:
        pytest.fail("this test kills the broker: it needs TEST_INFRA=local")
    result = await run_scenario(
        chaos_system,
        infra,
        broker_killed(),
        rate=RATE,
        warm_seconds=3,
        fault_seconds=5,
        after_seconds=5,
        stuck_after=PATIENCE,
        patience=PATIENCE,
    )
    assert_nothing_lost_or_doubled(result)
    # The outbox is why: the orders API kept accepting orders while Kafka was gone.
    assert result["accepted_during_fault"] > 0, result


@pytest.mark.timeout(420)
async def test_kitchen_killed_while_orders_flow(infra: Infra, chaos_system: System) -> None:
    result = await run_scenario(
        chaos_system,
        infra,
        killed("kitchen"),
        rate=RATE,
        warm_seconds=3,
        fault_seconds=3,
        after_seconds=5,
        stuck_after=PATIENCE,
        patience=PATIENCE,
    )
    assert_nothing_lost_or_doubled(result)
    assert result["accepted_during_fault"] > 0, result


@pytest.fixture(scope="module")
async def cluster_system() -> AsyncIterator[tuple[Infra, System]]:
    with kafka_cluster() as cluster:
        running = await start_system(cluster, env={"kitchen": {"KITCHEN_CAPACITY": "100000"}})
        try:
            yield cluster, running
        finally:
            running.stop()


@pytest.mark.timeout(600)
async def test_every_busy_partition_given_another_leader_while_orders_flow_loses_nothing(
    cluster_system: tuple[Infra, System],
) -> None:
    """Kafka's own tools give each partition of the orders and kitchen topics another preferred
    leader and elect it while orders flow: the relays' producers and the consumers follow the
    new leaders, and every order is still applied once. First of the cluster's scenarios, so
    the failover after it starts from moved leaders."""
    cluster, running = cluster_system
    result = await run_scenario(
        running,
        cluster,
        leader_moved(hold=5, leadership_patience=PATIENCE),
        rate=RATE,
        stuck_after=PATIENCE,
        patience=PATIENCE,
    )
    assert_nothing_lost_or_doubled(result)
    assert result["accepted_during_fault"] > 0, result
    assert result["partitions_moved"] == ORDERS.partitions + KITCHEN.partitions, result
    assert result["seconds_until_led_by_new_leaders"] is not None, result
    # The controller's own preferred-leader election, every 20 s, kept the moved leaders.
    assert result["partitions_led_by_another_at_end"] == 0, result


@pytest.mark.timeout(600)
async def test_a_broker_of_three_killed_while_orders_flow_is_a_failover(
    cluster_system: tuple[Infra, System],
) -> None:
    """On three brokers the broker leading most partitions dies: orders are accepted and
    applied throughout (the others lead its partitions), and it leads again after its
    restart."""
    cluster, running = cluster_system
    result = await run_scenario(
        running,
        cluster,
        broker_failover(leadership_patience=PATIENCE),
        rate=RATE,
        stuck_after=PATIENCE,
        patience=PATIENCE,
    )
    assert_nothing_lost_or_doubled(result)
    assert result["accepted_during_fault"] > 0, result
    assert result["seconds_until_it_led_again"] is not None, result


@pytest.mark.timeout(600)
async def test_the_kitchen_scaled_to_three_processes_and_back_loses_and_doubles_nothing(
    cluster_system: tuple[Infra, System],
) -> None:
    """Two more kitchen processes join its group while orders flow, then leave: each join and
    each leave is a rebalance, and every order is still applied once."""
    cluster, running = cluster_system
    result = await run_scenario(
        running,
        cluster,
        scaled("kitchen", to=3, hold=10),
        rate=RATE,
        stuck_after=PATIENCE,
        patience=PATIENCE,
    )
    assert_nothing_lost_or_doubled(result)
    assert result["accepted_during_fault"] > 0, result
