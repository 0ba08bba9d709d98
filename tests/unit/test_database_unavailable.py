"""A request that cannot reach the database gets a 503 with Retry-After, never a 500."""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from eventing.database import is_database_unavailable
from service_kit.http import answer_503_when_the_database_is_unavailable

FAILURES = {
    "pool exhausted": PoolTimeout("QueuePool limit of size 10 overflow 0 reached"),
    "server gone": OperationalError("SELECT 1", {}, ConnectionResetError()),
    "connection closed": InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    "refused": ConnectionRefusedError(111, "Connection refused"),
    # What SQLAlchemy makes of these: a plain DBAPIError.
    "server starting up": DBAPIError(
        None, None, asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    ),
    "server shutting down": DBAPIError(
        "SELECT 1", {}, asyncpg.exceptions.AdminShutdownError("terminating connection")
    ),
    "driver session broken": DBAPIError(
        "SELECT 1", {}, asyncpg.InternalClientError("cannot switch to state 12")
    ),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_database_unavailable_is_a_503_with_retry_after(failure: str) -> None:
    app = FastAPI()
    answer_503_when_the_database_is_unavailable(app)

    @app.get("/thing")
    async def thing() -> None:
        raise FAILURES[failure]

    response = TestClient(app, raise_server_exceptions=False).get("/thing")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "database unavailable" in response.json()["detail"]
    assert is_database_unavailable(FAILURES[failure])


def test_other_errors_are_not_taken_for_an_outage() -> None:
    assert not is_database_unavailable(ValueError("a bug"))


def test_a_statement_that_fails_on_its_own_is_still_a_500() -> None:
    app = FastAPI()
    answer_503_when_the_database_is_unavailable(app)

    @app.get("/thing")
    async def thing() -> None:
        raise DBAPIError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("duplicate"))

    response = TestClient(app, raise_server_exceptions=False).get("/thing")
    assert response.status_code == 500


def test_a_restarting_server_is_unavailable_not_a_bug() -> None:
    import asyncpg

    assert is_database_unavailable(asyncpg.exceptions.CannotConnectNowError("shutting down"))
    assert is_database_unavailable(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert not is_database_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate"))


def test_a_driver_whose_session_went_wrong_is_unavailable_but_bad_data_is_not() -> None:

    import asyncpg
    from asyncpg.exceptions._base import DataError as ClientDataError
    from sqlalchemy.exc import DBAPIError

    from eventing.database import is_driver_fault

    driver = [
        asyncpg.InternalClientError("cannot switch to state 15; another operation is in progress"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        TimeoutError(),
    ]
    data = [
        ClientDataError("invalid input for query argument $1: value out of int64 range"),
        asyncpg.exceptions.NumericValueOutOfRangeError("out of range"),
        ValueError("a bug"),
    ]
    for error in driver:
        assert is_driver_fault(error), error
        assert is_database_unavailable(DBAPIError("SELECT 1", {}, error)), error  # as SQLAlchemy
    for error in data:
        assert not is_driver_fault(error), error
        assert not is_database_unavailable(DBAPIError("SELECT 1", {}, error)), error
