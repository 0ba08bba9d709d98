"""HTTP pieces every service's FastAPI app shares: health, readiness, metrics, 503s when the
database is unavailable, and load shedding when the service is overloaded."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from aiokafka.client import AIOKafkaClient
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventing import metrics
from eventing.database import DATABASE_UNAVAILABLE_ERRORS

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
    cache_seconds: float = KAFKA_CHECK_CACHE_SECONDS,
    timeout_seconds: float = KAFKA_CHECK_TIMEOUT_SECONDS,
) -> ReadinessCheck:
    """The broker answers a metadata request (a fresh connection, short timeouts, cached)."""
    cached: tuple[float, tuple[bool, str]] | None = None
    lock = asyncio.Lock()

    async def probe() -> tuple[bool, str]:
        client = AIOKafkaClient(
            bootstrap_servers=bootstrap_servers,
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
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def answer_503_when_the_database_is_unavailable(app: FastAPI) -> None:
    """A request that cannot get a database connection (PostgreSQL restarting, the pool
    exhausted under overload) is answered 503 with Retry-After, not 500: the client may retry,
    and nothing was done. Under overload the wait is cut short: see ``LoadShedding``."""

    async def unavailable(_: Request, error: Exception) -> Response:
        return retry_later(f"database unavailable, retry later ({type(error).__name__})")

    for error in (*DATABASE_UNAVAILABLE_ERRORS, ConnectionError):
        app.add_exception_handler(error, unavailable)
    app.add_middleware(LoadShedding)


def retry_later(detail: str) -> JSONResponse:
    """503 with the reason and ``Retry-After``: nothing was done, the client may try again."""
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})


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
