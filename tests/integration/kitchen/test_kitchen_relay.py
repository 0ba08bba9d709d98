"""``kitchen relay`` publishes the kitchen's outbox to its topic, keyed by order id, in order."""

from __future__ import annotations

import json

from eventing.events import model_for
from tests.support.eventing import create_topic, unique_prefix
from tests.support.infra import Infra
from tests.support.kafka import read_topic
from tests.support.kitchen import (
    OrdersTopic,
    confirmed,
    new_order_id,
    running_kitchen,
)
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess, free_port


async def test_the_kitchen_relay_publishes_ticket_events(
    infra: Infra, orders_topic: OrdersTopic
) -> None:
    prefix = unique_prefix()
    topic = await create_topic(infra, f"{prefix}pizzeria.kitchen")
    order_id = new_order_id()
    async with running_kitchen(infra, orders_topic, outbox_topic_prefix=prefix) as kitchen:
        await kitchen.publish_and_wait(confirmed(order_id))
        started = await kitchen.client.post(f"/tickets/{order_id}/start", headers=kitchen.chef)
        assert started.status_code == 200
        outbox = await kitchen.outbox()
        assert {row["topic"] for row in outbox} == {topic}

        port = free_port()
        relay = ServiceProcess(
            name="kitchen-relay",
            module="kitchen",
            command="relay",
            env={
                "KITCHEN_DATABASE_URL": kitchen.database_url,
                "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
                "KITCHEN_RELAY_METRICS_PORT": str(port),
            },
            ready_url=f"http://127.0.0.1:{port}/readyz",
        )
        relay.start()
        try:
            await relay.wait_ready()
            records = await read_topic(
                infra.kafka_bootstrap, topic, until=lambda rs: len(rs) >= len(outbox)
            )
            await eventually(kitchen.outbox, until=lambda rows: rows == [], what="an empty outbox")
        finally:
            relay.terminate()

    headers = [{name: value.decode() for name, value in r.headers} for r in records]
    assert [h["ce_type"] for h in headers] == [
        "com.mariospizzeria.kitchen.ticket_queued.v1",
        "com.mariospizzeria.kitchen.cooking_started.v1",
    ]
    assert [h["ce_id"] for h in headers] == [row["event_id"] for row in outbox]
    assert {h["ce_source"] for h in headers} == {"/mariospizzeria/kitchen"}
    assert {r.key for r in records} == {order_id.encode()}
    for header, record in zip(headers, records, strict=True):
        model = model_for(header["ce_type"])
        assert model is not None
        assert model.model_validate(json.loads(record.value)).order_id == order_id  # type: ignore[attr-defined]
