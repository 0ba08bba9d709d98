"""The base of a service's commands, importable from a pure domain layer (standard library only;
``service_kit.handlers`` runs them)."""

from __future__ import annotations

from typing import Generic, TypeVar

Result = TypeVar("Result", covariant=True)


class Command(Generic[Result]):
    """A request to change something, named in the imperative; ``Result`` is what its handler
    returns. Subclasses are frozen dataclasses."""
