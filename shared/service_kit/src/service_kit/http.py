"""HTTP pieces every service's FastAPI app shares: health, readiness, metrics, 503s when the
database is unavailable, load shedding when the service is overloaded, and the answers to bad
input (one error document, a body limit, the status codes each route declares)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka.client import AIOKafkaClient
from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventing import metrics
from eventing.database import DATABASE_UNAVAILABLE_ERRORS, is_database_unavailable
from eventing.kafka_security import KafkaSecurity, kafka_security
from service_kit.limits import StreamSlots

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]

# The broker check's request timeout and the hard cap on one whole check; /readyz never hangs.
KAFKA_REQUEST_TIMEOUT_MS = 2000
KAFKA_CHECK_TIMEOUT_SECONDS = 3.0
# A result is reused this long, so /readyz stays cheap however often it is probed.
KAFKA_CHECK_CACHE_SECONDS = 2.0


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    async def check() -> tuple[bool, str]:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", with its reason
            return False, f"database: {type(error).__name__}"
        return True, "database: ok"

    return check


def kafka_check(
    bootstrap_servers: str,
    *,
    security: KafkaSecurity | None = None,
    cache_seconds: float = KAFKA_CHECK_CACHE_SECONDS,
    timeout_seconds: float = KAFKA_CHECK_TIMEOUT_SECONDS,
) -> ReadinessCheck:
    """The broker answers a metadata request (a fresh connection, short timeouts, cached)."""
    cached: tuple[float, tuple[bool, str]] | None = None
    lock = asyncio.Lock()
    options = kafka_security(security).client_options()

    async def probe() -> tuple[bool, str]:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap_servers,
            **options,
            client_id="readiness-check",
            request_timeout_ms=KAFKA_REQUEST_TIMEOUT_MS,
            metadata_max_age_ms=KAFKA_REQUEST_TIMEOUT_MS,
            retry_backoff_ms=100,
        )
        try:
            # bootstrap() fetches the cluster metadata from one of the bootstrap servers.
            await asyncio.wait_for(client.bootstrap(), timeout_seconds)
            brokers = len(client.cluster.brokers())
        except TimeoutError:
            return False, f"kafka: no metadata from {bootstrap_servers} in {timeout_seconds:g}s"
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", with its reason
            return False, f"kafka: {type(error).__name__}: {str(error)[:200]}"
        finally:
            # Closing the connection to a dead broker may fail as well; that changes nothing.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), timeout_seconds)
        if brokers == 0:
            return False, "kafka: no brokers in the metadata"
        return True, f"kafka: ok ({brokers} broker{'s' if brokers != 1 else ''})"

    async def check() -> tuple[bool, str]:
        nonlocal cached
        async with lock:  # concurrent probes share one metadata request
            now = time.monotonic()
            if cached is None or now - cached[0] >= cache_seconds:
                result = await probe()
                cached = (time.monotonic(), result)
            return cached[1]

    return check


def operations_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive.")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Database, broker and consumer are usable.")
    async def readyz(response: Response) -> dict[str, object]:
        results = {name: await check() for name, check in checks.items()}
        ready = all(ok for ok, _ in results.values())
        response.status_code = 200 if ready else 503
        return {
            "status": "ready" if ready else "unready",
            "checks": {
                name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()
            },
        }

    @router.get("/metrics", summary="Prometheus metrics.", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def answer_503_when_the_database_is_unavailable(app: FastAPI) -> None:
    """A request that cannot get a database connection (PostgreSQL restarting, the pool
    exhausted under overload) is answered 503 with Retry-After, not 500: the client may retry,
    and nothing was done. Under overload the wait is cut short: see ``LoadShedding``."""

    async def unavailable(_: Request, error: Exception) -> Response:
        return retry_later(f"database unavailable, retry later ({type(error).__name__})")

    async def unavailable_or_a_bug(request: Request, error: Exception) -> Response:
        # SQLAlchemy wraps what it has no class for in a plain DBAPIError: asyncpg's "the
        # database system is starting up" as much as a unique violation. Only the first is 503.
        if is_database_unavailable(error):
            return await unavailable(request, error)
        raise error

    for error in (*DATABASE_UNAVAILABLE_ERRORS, ConnectionError):
        app.add_exception_handler(error, unavailable)
    app.add_exception_handler(DBAPIError, unavailable_or_a_bug)
    app.add_middleware(LoadShedding)


def retry_later(detail: str) -> JSONResponse:
    """503 with the reason and ``Retry-After``: nothing was done, the client may try again."""
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})


class SlottedStreamingResponse(StreamingResponse):
    """A long-lived stream (Server-Sent Events) that holds one of ``app.state.stream_slots``
    for exactly as long as it is being sent, or a 503 with Retry-After when none is free.

    The slot is taken when the response starts and given back however it ends: the stream
    finishes, the client goes away (Starlette cancels the sending), the server stops, or the
    stream fails. Taking it here rather than in the route means a response that is never sent
    cannot keep one, and the stream's generator is not even started for a refused client.
    ``consuming_lifespan`` puts the slots on ``app.state``; without them nothing is refused.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        slots: StreamSlots | None = getattr(scope["app"].state, "stream_slots", None)
        if slots is not None and not slots.acquire():
            refusal = retry_later(
                f"{slots.open} streams are open, as many as this service serves; retry later"
            )
            await refusal(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        finally:
            if slots is not None:
                slots.release()


# Never refused: a probe must see the process as it is, and overload is when metrics matter.
OPERATIONS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class LoadShedding:
    """Refuses at once what the service could not start soon.

    When ``app.state.max_waiting_requests`` requests are already waiting for their response to
    start (in practice: for one of the pool's connections), a new one is answered 503 with
    Retry-After straight away. Without this, an overloaded API queues every request until the
    pool's timeout and then refuses it anyway, so everyone waits ten seconds and the clients'
    retries pile on. A request stops counting once its response has started, so long-lived
    streams take no place. ``consuming_lifespan`` sets the limit from the service's settings;
    without it nothing is refused.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPERATIONS_PATHS:
            await self._app(scope, receive, send)
            return
        limit: int | None = getattr(scope["app"].state, "max_waiting_requests", None)
        if limit is not None and self.waiting >= limit:
            metrics.HTTP_REQUESTS_SHED.inc()
            refusal = retry_later(f"overloaded: {self.waiting} requests are waiting; retry later")
            await refusal(scope, receive, send)
            return
        self.waiting += 1
        started = False

        async def send_and_count(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                self.waiting -= 1
            await send(message)

        try:
            await self._app(scope, receive, send_and_count)
        finally:
            if not started:
                self.waiting -= 1


# ------------------------------------------------------------------------------ bad input

# Every JSON body a service accepts is far smaller; a bigger one is refused before it is read.
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class FieldError(BaseModel):
    """One thing wrong with the request, and where (``["body", "lines", 0, "pizza"]``)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error answer of every service: ``detail`` says why, as text or per field.

    Some answers add fields (a 409 of the order lifecycle adds ``current_status`` and
    ``reason``); clients may rely on ``detail`` being there.
    """

    model_config = ConfigDict(extra="allow")

    detail: str | list[FieldError] = Field(
        description="Why the request was refused: a sentence, or one entry per bad field."
    )


_ERRORS: dict[int, tuple[str, Any]] = {
    400: (
        "Malformed request: a body that is not JSON or not UTF-8, or a NUL in the URL.",
        "There was an error parsing the body",
    ),
    401: ("No usable credentials (`WWW-Authenticate` names the scheme).", "missing bearer token"),
    403: (
        "The credentials are valid but lack the role this needs.",
        "requires one of the roles: manager",
    ),
    404: ("No such resource (or none the credentials may see).", "no order '01a2...'"),
    409: (
        "The request does not fit the resource's current state.",
        "cannot confirm an order that is cancelled",
    ),
    410: ("The resource existed and was removed for good.", "the customer's data was erased"),
    413: (
        "The body is larger than the service accepts.",
        f"the body may have at most {DEFAULT_MAX_BODY_BYTES} bytes",
    ),
    415: ("The body's content type is not accepted.", "unsupported content type"),
    422: (
        "The request is well-formed but a field is not acceptable.",
        [
            {
                "loc": ["body", "lines", 0, "quantity"],
                "msg": "Input should be less than or equal to 20",
                "type": "less_than_equal",
            }
        ],
    ),
    429: (
        "Too many requests from this client; retry after `Retry-After` seconds.",
        "too many orders from this address; retry in 12 s",
    ),
    503: (
        "Unavailable or overloaded for now, nothing was done; retry after `Retry-After`.",
        "database unavailable, retry later",
    ),
}
# Headers that come with some error answers.
_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}
# What any route may answer, whatever it does: declared once, in every service's app.
COMMON_ERRORS = (400, 422, 503)


def error_responses(
    *codes: int, examples: Mapping[int, Mapping[str, Any]] | None = None, **descriptions: str
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these error codes, each with the error model and an
    example; ``descriptions`` (``_404="No ticket for that order."``) say what they mean here,
    and ``examples`` (``{409: {"detail": "kitchen at capacity", "capacity": 3}}``) replace the
    generic example where the route's own answer says more."""
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        description, example = _ERRORS[code]
        own = (examples or {}).get(code)
        responses[code] = {
            "model": ErrorResponse,
            "description": descriptions.get(f"_{code}", description),
            "content": {"application/json": {"example": dict(own or {"detail": example})}},
        }
        if code in _ERROR_HEADERS:
            responses[code]["headers"] = _ERROR_HEADERS[code]
    return responses


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # The offending input is not echoed back: it may be megabytes, or not encodable as JSON
    # at all (a lone surrogate), and the client has it anyway.
    return [
        {"loc": list(issue.get("loc", ())), "msg": str(issue.get("msg", "")), "type": issue["type"]}
        for issue in error.errors()
    ]


async def _invalid(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": _field_errors(error)}, status_code=422)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        # Starlette names only the methods of the first route whose path matched.
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> set[str]:
    # Asked of the routes method by method: an included router is one route here, and it
    # does not list its methods.
    return {
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    }


class RequestLimits:
    """Refuses, before the app reads it, a body over ``app.state.max_body_bytes`` (413) and a
    NUL byte in the path or query (400), which no route can use and PostgreSQL cannot store."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        if b"%00" in raw_path or b"%00" in scope.get("query_string", b""):
            refusal = JSONResponse({"detail": "the URL holds a NUL character"}, status_code=400)
            await refusal(scope, receive, send)
            return
        limit: int = getattr(scope["app"].state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            too_large = JSONResponse(
                {"detail": f"the body may have at most {limit} bytes"}, status_code=413
            )
            await too_large(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            # Raised inside the route's body reading, which passes HTTPExceptions on to the
            # exception handlers (anything else it would answer as a 400).
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"the body may have at most {limit} bytes")
            return message

        await self._app(scope, counting_receive, send)


def protect(app: FastAPI) -> None:
    """What every service's app needs against bad input and overload: one error document
    (validation errors without the input echoed), a correct ``Allow`` on 405, a body limit,
    503s when the database is unavailable, and load shedding."""
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    answer_503_when_the_database_is_unavailable(app)
    app.add_middleware(RequestLimits)
