"""``analytics serve | migrate | rebuild``.

``rebuild`` replays the orders and kitchen topics from the beginning into fresh projection
tables and swaps them in, while the service keeps running (see
``analytics.service_layer.rebuild``); it prints a JSON report.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from analytics.settings import AnalyticsSettings
from service_kit.service import service_main


async def _rebuild(settings: AnalyticsSettings) -> dict[str, object]:
    from analytics.bootstrap import projected_topics, projections
    from analytics.service_layer.rebuild import rebuild
    from eventing.database import create_engine

    engine = create_engine(
        settings.database_url, pool_size=2, application_name=f"{settings.service_name}-rebuild"
    )
    try:
        report = await rebuild(
            engine,
            settings.kafka_bootstrap_servers,
            projected_topics(settings),
            projections(),
            security=settings.kafka_security,
        )
    finally:
        await engine.dispose()
    return report.as_dict()


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["rebuild"]:
        import logging

        from eventing.logs import configure_logging

        configure_logging("analytics", "INFO", fmt="text")
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        report = asyncio.run(_rebuild(AnalyticsSettings()))
        sys.stdout.write(json.dumps(report) + "\n")
        return 0

    from analytics.entrypoints.api import create_app

    return service_main(
        "analytics",
        settings=AnalyticsSettings,
        app=create_app,
        migrations=Path(__file__).parent / "migrations",
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
