"""The event catalogue: one typed payload per CloudEvents type, shared by all services."""

from contracts.catalogue.base import TYPE_PREFIX, CatalogueEvent
from contracts.catalogue.customers import CustomerContactUpdated
from contracts.catalogue.kitchen import (
    EstimateChanged,
    KitchenCookingStarted,
    KitchenOrderReady,
    TicketQueued,
    TicketWithdrawn,
)
from contracts.catalogue.menu import (
    PizzaAdded,
    PizzaChanged,
    PizzaRetired,
    ToppingAdded,
    ToppingRetired,
)
from contracts.catalogue.orders import (
    Fulfilment,
    OrderCancelled,
    OrderConfirmed,
    OrderCookingStarted,
    OrderDelivered,
    OrderDeparted,
    OrderLine,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
    is_tracking_token,
    new_tracking_token,
    tracking_token_sha256,
)
from contracts.catalogue.payments import PaymentSucceeded

__all__ = [
    "TYPE_PREFIX",
    "CatalogueEvent",
    "CustomerContactUpdated",
    "EstimateChanged",
    "Fulfilment",
    "KitchenCookingStarted",
    "KitchenOrderReady",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderCookingStarted",
    "OrderDelivered",
    "OrderDeparted",
    "OrderLine",
    "OrderPickedUp",
    "OrderPlaced",
    "OrderReady",
    "PaymentSucceeded",
    "PizzaAdded",
    "PizzaChanged",
    "PizzaRetired",
    "TicketQueued",
    "TicketWithdrawn",
    "ToppingAdded",
    "ToppingRetired",
    "is_tracking_token",
    "new_tracking_token",
    "tracking_token_sha256",
]
