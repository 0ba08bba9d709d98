"""``orders serve | relay | migrate``: the processes of the orders service."""

from __future__ import annotations

from pathlib import Path

from orders.settings import OrdersRelaySettings, OrdersSettings
from service_kit.service import service_main


def main(argv: list[str] | None = None) -> int:
    from orders.entrypoints.api import create_app

    return service_main(
        "orders",
        settings=OrdersSettings,
        app=create_app,
        migrations=Path(__file__).parent / "migrations",
        relay_settings=OrdersRelaySettings,
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
