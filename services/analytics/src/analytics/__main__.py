"""``analytics serve | migrate``."""

from __future__ import annotations

from pathlib import Path

from analytics.settings import AnalyticsSettings
from eventing.service import service_main


def main(argv: list[str] | None = None) -> int:
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
