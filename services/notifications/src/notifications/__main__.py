"""``notifications serve | migrate``."""

from __future__ import annotations

from pathlib import Path

from notifications.settings import NotificationsSettings
from service_kit.service import service_main


def main(argv: list[str] | None = None) -> int:
    from notifications.entrypoints.api import create_app

    return service_main(
        "notifications",
        settings=NotificationsSettings,
        app=create_app,
        migrations=Path(__file__).parent / "migrations",
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
