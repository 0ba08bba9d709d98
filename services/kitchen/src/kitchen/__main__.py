"""``kitchen serve | migrate | relay``: the processes of the kitchen service."""

from __future__ import annotations

from pathlib import Path

from kitchen.settings import KitchenRelaySettings, KitchenSettings
from service_kit.service import service_main


def main(argv: list[str] | None = None) -> int:
    from kitchen.entrypoints.api import create_app

    return service_main(
        "kitchen",
        settings=KitchenSettings,
        app=create_app,
        migrations=Path(__file__).parent / "migrations",
        relay_settings=KitchenRelaySettings,
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
