"""The one way a service's FastAPI app is made: whatever a service adds, its app always has the
answers to bad input and overload (``service_kit.http.protect``), a SERVER span per request
(``service_kit.tracing``) and the error documents every route may return."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from service_kit.http import COMMON_ERRORS, error_responses, protect
from service_kit.tracing import TracingMiddleware

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]
# How a service answers one of its own exceptions (a domain error -> 404, 409, 422...).
ErrorAnswer = Callable[[Request, Any], Awaitable[Response]]


def service_app(
    *,
    title: str,
    description: str,
    version: str,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    error_answers: Mapping[type[Exception], ErrorAnswer] | None = None,
) -> FastAPI:
    """A service's app: its routers and error answers on top of what every service has."""
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        responses=error_responses(*COMMON_ERRORS),
        # FastAPI's own OpenTelemetry (>= 0.165) adds a SERVER span and three INTERNAL ones
        # (dependencies, endpoint, serialization) to every request; TracingMiddleware's one
        # SERVER span is the documented trace, and each span costs a request CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    protect(app)
    app.add_middleware(TracingMiddleware)
    for router in routers:
        app.include_router(router)
    for error, answer in (error_answers or {}).items():
        app.add_exception_handler(error, answer)
    return app
