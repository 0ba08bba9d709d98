"""No request of any service is handed to the thread pool.

FastAPI runs a plain ``def`` dependency or endpoint in its thread pool: two context switches and
a lock for each, on every request (measured: a tenth of a request's CPU in the orders API). Every
dependency and endpoint is ``async def``; what may block (a JWKS fetch) hands itself to a thread
only when it has to (see ``service_kit.auth``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from analytics.entrypoints.api import create_app as analytics_app
from kitchen.entrypoints.api import create_app as kitchen_app
from notifications.entrypoints.api import create_app as notifications_app
from orders.entrypoints.api import create_app as orders_app

APPS: dict[str, Callable[[], FastAPI]] = {
    "orders": orders_app,
    "kitchen": kitchen_app,
    "notifications": notifications_app,
    "analytics": analytics_app,
}


def _runs_in_a_thread(call: Any) -> bool:
    if inspect.isclass(call):
        call = call.__call__  # a class instance dependency (HTTPBearer): its __call__ runs
    elif not inspect.isroutine(call):
        call = type(call).__call__
    return not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call))


def _calls(dependant: Dependant, where: str) -> Iterator[tuple[str, Any]]:
    if dependant.call is not None:
        yield where, dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub, f"{where} <- {getattr(sub.call, '__qualname__', sub.call)}")


def _api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # how FastAPI keeps an included router
        if included is not None:
            for depends in route.include_context.dependencies:  # type: ignore[attr-defined]
                assert not _runs_in_a_thread(depends.dependency), depends
            yield from _api_routes(included.routes)


@pytest.mark.parametrize("service", sorted(APPS))
def test_every_dependency_and_endpoint_runs_on_the_event_loop(service: str) -> None:
    routes = list(_api_routes(APPS[service]().routes))
    assert len(routes) > 3  # the walk found the service's routes
    threaded = sorted(
        {
            f"{' '.join(sorted(route.methods or ()))} {route.path}: {where}"
            for route in routes
            for where, call in _calls(route.dependant, route.name)
            if _runs_in_a_thread(call)
        }
    )
    assert threaded == []
