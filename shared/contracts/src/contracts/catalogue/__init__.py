"""The event catalogue: one typed payload per CloudEvents type, shared by all services."""

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
    OrderLine,
    OrderOutForDelivery,
    OrderPickedUp,
    OrderPlaced,
    OrderReady,
    is_tracking_token,
    new_tracking_token,
    tracking_token_sha256,
)
from contracts.catalogue.payments import PaymentSucceeded
from eventing.events import EventData, event_types, model_for

__all__ = [
    "CustomerContactUpdated",
    "EstimateChanged",
    "EventData",
    "Fulfilment",
    "KitchenCookingStarted",
    "KitchenOrderReady",
    "OrderCancelled",
    "OrderConfirmed",
    "OrderCookingStarted",
    "OrderDelivered",
    "OrderLine",
    "OrderOutForDelivery",
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
    "event_types",
    "is_tracking_token",
    "model_for",
    "new_tracking_token",
    "tracking_token_sha256",
]
