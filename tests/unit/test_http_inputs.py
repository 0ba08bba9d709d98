"""Bad input gets a 4xx with a reason from every service's app, never a 500: the shared pieces
(``service_kit.http.protect``, ``service_kit.inputs``, ``service_kit.limits``) on a bare FastAPI
app; and a long-lived stream holds one of the process's stream slots while it is open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from service_kit.http import ErrorResponse, SlottedStreamingResponse, error_responses, protect
from service_kit.inputs import MultiLine, Rfc3339, SingleLine
from service_kit.limits import RateLimit, RateSpec, StreamSlots, retry_after_header
from tests.support.polling import eventually


class Note(BaseModel):
    name: Annotated[str, SingleLine, Field(max_length=20)]
    text: Annotated[str, MultiLine, Field(max_length=200)] = "-"


def app_under_test(max_body_bytes: int = 2048) -> TestClient:
    app = FastAPI()
    protect(app)
    app.state.max_body_bytes = max_body_bytes  # what consuming_lifespan sets from the settings

    @app.post("/notes")
    async def add(note: Note) -> Note:
        return note

    @app.get("/notes")
    async def since(moment: Annotated[Rfc3339 | None, Query()] = None) -> dict[str, str]:
        return {"since": moment.isoformat() if moment else "-"}

    @app.get("/notes/{name}")
    async def read(name: str) -> dict[str, str]:
        return {"name": name}

    # Routes of an included router, the way every service declares its own.
    tags = APIRouter(prefix="/tags")

    @tags.put("/{name}")
    async def tag(name: str) -> dict[str, str]:
        return {"name": name}

    @tags.delete("/{name}")
    async def untag(name: str) -> None:
        return None

    app.include_router(tags)
    return TestClient(app, raise_server_exceptions=False)


def post_json(client: TestClient, document: object) -> tuple[int, dict[str, Any]]:
    response = client.post(
        "/notes", content=json.dumps(document), headers={"Content-Type": "application/json"}
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("a\u0000b", "string_pattern_mismatch"),  # PostgreSQL cannot store NUL in text
        ("a\u0007b", "string_pattern_mismatch"),
        ("a\u0085b", "string_pattern_mismatch"),  # a C1 control
        ("a\nb", "string_pattern_mismatch"),  # a name is one line
        ("\ud800", "string_unicode"),  # a lone surrogate is not Unicode text
        ("", "string_too_short"),
        ("x" * 21, "string_too_long"),
    ],
)
def test_text_that_cannot_be_stored_or_shown_is_a_422_naming_the_field(
    name: str, rule: str
) -> None:
    status, body = post_json(app_under_test(), {"name": name})
    assert status == 422
    [issue] = body["detail"]
    assert issue["loc"] == ["body", "name"]
    assert issue["type"] == rule
    assert "input" not in issue  # never echoed: it may not even be encodable as JSON


def test_multi_line_text_keeps_its_line_breaks() -> None:
    status, body = post_json(app_under_test(), {"name": "Giulia", "text": "one\ntwo\tthree"})
    assert status == 200
    assert body["text"] == "one\ntwo\tthree"


def test_a_body_over_the_limit_is_a_413_whether_declared_or_streamed() -> None:
    client = app_under_test(max_body_bytes=1024)
    big = json.dumps({"name": "x", "text": "y" * 2000}).encode()
    declared = client.post("/notes", content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert "at most 1024 bytes" in declared.json()["detail"]

    def chunks() -> object:
        yield big[:600]
        yield big[600:]

    streamed = client.post("/notes", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert "at most 1024 bytes" in streamed.json()["detail"]


def test_undecodable_bodies_are_4xx_with_a_reason() -> None:
    client = app_under_test()
    not_json = client.post("/notes", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422
    assert not_json.json()["detail"][0]["type"] == "json_invalid"
    not_utf8 = client.post(
        "/notes", content=b'{"name": "\xff"}', headers={"Content-Type": "application/json"}
    )
    assert not_utf8.status_code == 400
    assert not_utf8.json()["detail"]


def test_a_nul_in_the_url_is_a_400() -> None:
    client = app_under_test()
    assert client.get("/notes/a%00b").status_code == 400
    response = client.get("/notes?moment=2026-01-01T00:00:00Z%00")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "methods"), [("/notes", {"GET", "POST"}), ("/tags/x", {"PUT", "DELETE"})]
)
def test_a_405_lists_every_method_of_the_path(path: str, methods: set[str]) -> None:
    response = app_under_test().request("PATCH", path)
    assert response.status_code == 405
    assert {method.strip() for method in response.headers["Allow"].split(",")} == methods


@pytest.mark.parametrize(
    "text", ["0.5", "1700000000", "2026-01-01T00:00:00", "2026-01-01", "yesterday"]
)
def test_times_must_be_rfc_3339_with_an_offset(text: str) -> None:
    response = app_under_test().get("/notes", params={"moment": text})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "moment"]


def test_rfc_3339_times_are_read_in_utc_even_at_the_ends_of_the_calendar() -> None:
    adapter = TypeAdapter(Rfc3339)
    assert adapter.validate_python("2026-06-01T14:00:00+02:00") == datetime(
        2026, 6, 1, 12, tzinfo=UTC
    )
    assert adapter.validate_python("0001-01-01T00:00:00+01:00") == datetime.min.replace(tzinfo=UTC)
    assert adapter.validate_python("9999-12-31T23:59:59-01:00") == datetime.max.replace(tzinfo=UTC)
    with pytest.raises(ValidationError):
        adapter.validate_python(1700000000)
    assert adapter.json_schema() == {"type": "string", "format": "date-time"}


def test_a_rate_limit_lets_a_burst_through_then_says_how_long_to_wait() -> None:
    now = [1000.0]
    limit = RateLimit(RateSpec.parse("3/minute"), clock=lambda: now[0])
    assert [limit.take("a") for _ in range(3)] == [None, None, None]
    wait = limit.take("a")
    assert wait == pytest.approx(20.0)  # one token comes back every 20 s
    assert limit.take("b") is None  # another client has its own bucket
    now[0] += 20.0
    assert limit.take("a") is None
    assert retry_after_header(0.2) == "1"


def test_a_token_given_back_can_be_spent_again_but_never_beyond_the_burst() -> None:
    limit = RateLimit(RateSpec.parse("2/hour"))
    assert [limit.take("a") for _ in range(2)] == [None, None]
    limit.give_back("a")
    assert limit.take("a") is None
    assert limit.take("a") is not None
    limit.give_back("a")
    limit.give_back("a")
    limit.give_back("a")
    assert [limit.take("a") is None for _ in range(3)] == [True, True, False]


def test_rate_limits_forget_the_least_recent_keys_first() -> None:
    limit = RateLimit(RateSpec.parse("1/hour"), max_keys=2)
    assert limit.take("a") is None
    assert limit.take("b") is None
    assert limit.take("c") is None  # forgets "a"
    assert limit.take("c") is not None
    assert limit.take("a") is None  # a full bucket again


@pytest.mark.parametrize(("text", "spec"), [("20/minute", "20/minute"), ("off", "off")])
def test_rates_read_and_print_the_same(text: str, spec: str) -> None:
    assert str(RateSpec.parse(text)) == spec
    assert RateSpec.parse("0").unlimited


def test_a_rate_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a rate"):
        RateSpec.parse("20 per minute")


def test_stream_slots_refuse_past_their_capacity() -> None:
    slots = StreamSlots(2)
    assert slots.acquire() and slots.acquire()
    assert not slots.acquire()
    slots.release()
    assert slots.acquire()
    assert all(StreamSlots(0).acquire() for _ in range(1000))  # 0: no limit


def streaming_app(capacity: int) -> tuple[FastAPI, asyncio.Event]:
    app = FastAPI()
    protect(app)
    app.state.stream_slots = StreamSlots(capacity)  # what consuming_lifespan sets
    finish = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        yield b"event: hello\ndata: {}\n\n"
        await finish.wait()

    @app.get("/stream")
    async def stream() -> SlottedStreamingResponse:
        return SlottedStreamingResponse(events(), media_type="text/event-stream")

    return app, finish


async def test_a_stream_holds_its_slot_while_open_and_the_next_one_is_a_503() -> None:
    app, finish = streaming_app(capacity=1)
    slots: StreamSlots = app.state.stream_slots
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # httpx's ASGI transport answers once the app is done, so the first stream is a task.
        first = asyncio.create_task(client.get("/stream"))
        await eventually(lambda: slots.open == 1, timeout=10, interval=0.01, what="1 stream open")
        refused = await client.get("/stream")
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "1"
        assert "streams are open" in refused.json()["detail"]
        assert slots.open == 1  # the refusal took nothing
        finish.set()
        assert (await first).status_code == 200
        assert slots.open == 0


async def test_a_stream_gives_its_slot_back_when_it_is_cancelled() -> None:
    app, _ = streaming_app(capacity=1)
    slots: StreamSlots = app.state.stream_slots
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # A client that goes away, or a server that stops, cancels the sending.
        stream = asyncio.create_task(client.get("/stream"))
        await eventually(lambda: slots.open == 1, timeout=10, interval=0.01, what="1 stream open")
        stream.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stream
        assert slots.open == 0


def test_a_routes_error_responses_say_what_they_mean_there() -> None:
    responses = error_responses(
        404, 409, _409="At capacity.", examples={409: {"detail": "kitchen at capacity"}}
    )
    assert responses[409]["description"] == "At capacity."
    assert responses[409]["content"]["application/json"]["example"] == {
        "detail": "kitchen at capacity"
    }
    assert responses[404]["model"] is ErrorResponse
    assert responses[404]["content"]["application/json"]["example"]["detail"]
