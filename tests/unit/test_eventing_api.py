"""The runtime's public API: ``eventing.__all__`` and each module's, and one root for its errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import pytest

import eventing
from eventing.errors import EventingError


def public_modules() -> list[ModuleType]:
    return [
        importlib.import_module(module.name)
        for module in pkgutil.iter_modules(eventing.__path__, "eventing.")
        if not module.name.rsplit(".", 1)[-1].startswith("_")
    ]


@pytest.mark.parametrize("module", public_modules(), ids=lambda module: module.__name__)
def test_every_public_module_declares_what_it_exports(module: ModuleType) -> None:
    exported = getattr(module, "__all__", None)
    assert exported, f"{module.__name__} has no __all__"
    assert [name for name in exported if not hasattr(module, name)] == []


def test_the_package_exports_each_name_from_the_module_that_exports_it() -> None:
    homes = {
        name: module.__name__
        for module in public_modules()
        for name in module.__all__
        if not isinstance(getattr(module, name), ModuleType)
    }
    wrong = [
        name
        for name in eventing.__all__
        if name not in homes
        or getattr(eventing, name) is not getattr(importlib.import_module(homes[name]), name)
    ]
    assert wrong == []


def test_importing_a_light_module_loads_no_client() -> None:
    # The public names are imported when first used: the catalogue's import of eventing.events
    # must not load Kafka, the database and tracing.
    code = (
        "import sys, eventing, eventing.events, eventing.errors, eventing.topics; "
        "print(sorted(m for m in ('aiokafka', 'sqlalchemy', 'asyncpg', 'opentelemetry', "
        "'alembic') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_every_error_of_the_runtime_is_an_eventing_error() -> None:
    elsewhere = [
        f"{module.__name__}.{name}"
        for module in public_modules()
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module.__name__
        and module.__name__ != "eventing.errors"
    ]
    assert elsewhere == []
    errors = importlib.import_module("eventing.errors")
    classes = [getattr(errors, name) for name in errors.__all__]
    outside = [
        cls.__name__
        for cls in classes
        if inspect.isclass(cls) and issubclass(cls, BaseException)
        if not issubclass(cls, EventingError)
    ]
    assert outside == []


def test_retriable_says_whether_trying_again_may_help() -> None:
    from eventing.errors import PermanentHandlerError, UndecodableRecord, UnknownTopicError

    assert EventingError.retriable is False
    assert PermanentHandlerError.retriable is False
    assert UndecodableRecord("not JSON").retriable is False
    assert UnknownTopicError("no such topic").retriable is True
    assert isinstance(UnknownTopicError("no such topic"), LookupError)
