"""A consumer process for crash tests: ``python -m tests.support.consumer_process``.

Environment: DATABASE_URL (with eventing tables and ``effects``), TOPIC, GROUP,
KAFKA_BOOTSTRAP_SERVERS, HEALTH_PORT; EVENTING_FAILPOINTS arms a crash (eventing.failpoints).
"""

from __future__ import annotations

import asyncio
import os
import signal

from contracts.catalogue import OrderPlaced
from contracts.topics import TOPOLOGY
from eventing.consumer import EventConsumer, Subscription
from eventing.database import create_engine, session_factory
from eventing.health_server import serve_health
from eventing.logs import configure_logging
from tests.support.recording_handlers import recorder


async def main() -> None:
    engine = create_engine(os.environ["DATABASE_URL"], application_name="test-consumer")
    consumer = EventConsumer(
        group_id=os.environ["GROUP"],
        topics=[os.environ["TOPIC"]],
        subscriptions=[Subscription("recorder", OrderPlaced, recorder)],
        sessions=session_factory(engine),
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        topology=TOPOLOGY,
    )

    async def ready() -> tuple[bool, str]:
        return consumer.ready()

    server = await serve_health("127.0.0.1", int(os.environ["HEALTH_PORT"]), ready)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, consumer.stop)
    try:
        await consumer.run()
    finally:
        server.close()
        await engine.dispose()


if __name__ == "__main__":
    configure_logging("test-consumer", "INFO", fmt="text")
    asyncio.run(main())
