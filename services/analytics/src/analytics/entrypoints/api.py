"""The analytics service's HTTP API: every answer derived from events alone.

All routes but the dashboard page need an analyst or manager token. ``from``/``to`` select the
orders placed in ``[from, to)`` (RFC 3339 with an offset); ``from`` not earlier than ``to`` is
an empty window, answered with zero counts. Buckets and hours are UTC.
"""

from __future__ import annotations

from fastapi import FastAPI

from analytics.bootstrap import bootstrap
from analytics.entrypoints.routes import customers, dashboard, drivers, kitchen, orders
from analytics.settings import AnalyticsSettings
from service_kit.app import service_app
from service_kit.service import consuming_lifespan


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    return service_app(
        title="Mario's Pizzeria — Analytics",
        description=__doc__ or "",
        version="0.2.0",
        lifespan=consuming_lifespan(lambda: bootstrap(settings)),
        routers=[dashboard.router, orders.router, kitchen.router, drivers.router, customers.router],
    )
