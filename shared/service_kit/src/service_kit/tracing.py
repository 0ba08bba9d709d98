"""HTTP in: a SERVER span per request, so a trace starts where the request comes in (see
``eventing.tracing`` for how the context then travels through the outbox and Kafka)."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventing.tracing import context_from_traceparent, end_span, tracer


class TracingMiddleware:
    """A SERVER span per HTTP request, child of the request's ``traceparent`` header if any.

    Plain ASGI (no instrumentation package). Health, readiness and metrics probes are not traced.
    ``service_app`` turns FastAPI's native tracing off, so this is the request's SERVER span;
    should an outer layer have started one anyway (an app built without ``service_app``), this
    middleware adds no second one and the request runs in that span.
    """

    UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("path") in self.UNTRACED
            or _in_server_span(trace.get_current_span())
        ):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers") or ():
            if name == b"traceparent":
                incoming = value.decode("latin-1")
                break
        method = scope.get("method", "GET")
        path = scope.get("path", "")
        context = context_from_traceparent(incoming) if incoming else None
        span = tracer().start_span(
            f"{method} {path}",
            context=context,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        token = otel_context.attach(trace.set_span_in_context(span, context))
        status_code = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                span.set_attribute("http.response.status_code", status_code)
            await send(message)

        error: BaseException | None = None
        try:
            await self.app(scope, receive, send_with_status)
        except BaseException as raised:
            error = raised
            raise
        finally:
            route = scope.get("route")
            route_path = getattr(route, "path", None)
            if isinstance(route_path, str):
                span.set_attribute("http.route", route_path)
                span.update_name(f"{method} {route_path}")
            if error is None and status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
            otel_context.detach(token)
            end_span(span, error)


def _in_server_span(span: Span) -> bool:
    return span.is_recording() and getattr(span, "kind", None) == SpanKind.SERVER
