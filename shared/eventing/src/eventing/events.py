"""The base of every event payload, and the registry of event types.

Each payload class names its CloudEvents type (reverse-DNS, ending in a version ``.v<N>``), the
topic it travels on and the aggregate it belongs to. Declaring the class registers it; the
registry is what consumers use to validate data and what schema generators document.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["EventData", "event_types", "model_for", "register"]


class EventData(BaseModel):
    """A versioned event payload. Subclasses set ``event_type``, ``topic`` and ``aggregate``.

    Unknown fields are ignored on read, so producers may add optional fields within a version
    without breaking consumers; any other change is a new type version.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]
    aggregate: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            register(cls)


_REGISTRY: dict[str, type[EventData]] = {}


def register(model: type[EventData]) -> None:
    """Add ``model`` to the registry (declaring a subclass does it). Raises ``ValueError`` when
    its type is not ``<reverse-dns>.<event>.v<N>`` or another class declared the same type."""
    event_type = model.event_type
    version = event_type.rsplit(".", 1)[-1]
    if "." not in event_type or not (version.startswith("v") and version[1:].isdigit()):
        raise ValueError(f"event type {event_type!r} must be <reverse-dns>.<event>.v<N>")
    existing = _REGISTRY.get(event_type)
    if existing is not None and existing is not model:
        raise ValueError(f"event type {event_type!r} is declared twice")
    _REGISTRY[event_type] = model


def event_types() -> dict[str, type[EventData]]:
    """Every registered event type, by CloudEvents type name."""
    return dict(_REGISTRY)


def model_for(event_type: str) -> type[EventData] | None:
    return _REGISTRY.get(event_type)
