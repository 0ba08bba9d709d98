"""The event catalogue: one typed payload per CloudEvents type, shared by all services."""

from eventing.catalogue.base import EventData, event_types, model_for
from eventing.catalogue.orders import OrderLine, OrderPlaced

__all__ = ["EventData", "OrderLine", "OrderPlaced", "event_types", "model_for"]
