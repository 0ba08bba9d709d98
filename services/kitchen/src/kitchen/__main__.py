"""``kitchen serve | migrate``."""

from __future__ import annotations

from pathlib import Path

from eventing.service import service_main
from kitchen.settings import KitchenSettings


def main(argv: list[str] | None = None) -> int:
    from kitchen.entrypoints.api import create_app

    return service_main(
        "kitchen",
        settings=KitchenSettings,
        app=create_app,
        migrations=Path(__file__).parent / "migrations",
        argv=argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
