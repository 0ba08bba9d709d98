"""The base of every payload in the pizzeria's catalogue: a runtime ``EventData`` whose
CloudEvents type is in the pizzeria's namespace."""

from __future__ import annotations

from typing import Any

from eventing.events import EventData

TYPE_PREFIX = "com.mariospizzeria."


class CatalogueEvent(EventData):
    """An event of the catalogue: ``com.mariospizzeria.<aggregate>.<event>.v<N>``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "event_type" in cls.__dict__ and not cls.event_type.startswith(TYPE_PREFIX):
            raise ValueError(f"event type {cls.event_type!r} must start with {TYPE_PREFIX}")
        super().__init_subclass__(**kwargs)
