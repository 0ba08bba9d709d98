"""The notifications service's HTTP API: customers' in-app messages (``routes/messages.py``),
the staff's deliveries (``routes/deliveries.py``) and the orders service's sign-in codes
(``routes/sign_in_codes.py``)."""

from __future__ import annotations

from fastapi import FastAPI

from notifications.entrypoints.lifespan import notifications_lifespan
from notifications.entrypoints.routes import deliveries, messages, sign_in_codes
from notifications.settings import NotificationsSettings
from service_kit.app import service_app


def create_app(settings: NotificationsSettings | None = None) -> FastAPI:
    return service_app(
        title="Mario's Pizzeria — Notifications",
        description=(
            "Email, SMS and in-app messages for every step of an order, sent once per event "
            "and channel. Customers read and dismiss their in-app messages; managers see every "
            "delivery with its status."
        ),
        version="1.0.0",
        lifespan=notifications_lifespan(settings),
        routers=[messages.router, deliveries.router, sign_in_codes.router],
    )
