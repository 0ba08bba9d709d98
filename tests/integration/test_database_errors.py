"""A failing statement's error text quotes no customer's details: neither the bound values nor
PostgreSQL's DETAIL. Those texts become dead-letter reasons, log lines and span statuses."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Insert, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from eventing.database import create_engine
from notifications.adapters.orm import contacts_table
from orders.adapters.orm import customers_table
from tests.support.infra import Infra
from tests.support.system import migrated_database

PERSONAL = ("name", "phone", "email", "address")


def distinctive() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "name": f"Ottavia Quercetti {tag}",
        "phone": f"+3906{int(tag, 16) % 10**8:08d}",
        "email": f"ottavia.{tag}@example.org",
        "address": f"Vicolo del Melangolo {tag}",
    }


async def error_text(engine: AsyncEngine, statement: Insert, rows: list[dict[str, Any]]) -> str:
    """All that a log line or a span can show of the last row's failure: the error's text, its
    repr and its traceback (with the driver's exception it was raised from). Nothing commits."""
    async with engine.connect() as connection:
        for row in rows[:-1]:
            await connection.execute(statement, row)
        with pytest.raises(DBAPIError) as raised:
            await connection.execute(statement, rows[-1])
    error = raised.value
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def quoted(text: str, row: Mapping[str, Any]) -> list[str]:
    """The personal details of ``row`` that ``text`` repeats."""
    return [
        field
        for field in PERSONAL
        if isinstance(row.get(field), str) and row[field].lower() in text.lower()
    ]


async def assert_quotes_nothing(
    url: str, statement: Insert, rows: list[dict[str, Any]], names_the: str
) -> None:
    shared = create_engine(url, pool_size=1, application_name="error-text-test")
    defaults = create_async_engine(url)  # SQLAlchemy's own defaults, to show what is at stake
    try:
        text = await error_text(shared, statement, rows)
        assert names_the in text  # what went wrong stays readable
        assert quoted(text, rows[-1]) == []
        assert quoted(await error_text(defaults, statement, rows), rows[-1]) != []
    finally:
        await shared.dispose()
        await defaults.dispose()


async def test_a_unique_violation_quotes_neither_the_parameters_nor_the_key(infra: Infra) -> None:
    url = await migrated_database(infra, "orders")
    first = {"id": str(uuid.uuid4()), "updated_at": datetime.now(UTC), **distinctive()}
    same_phone = {**first, "id": str(uuid.uuid4()), "email": None}  # DETAIL: Key (phone)=(...)
    await assert_quotes_nothing(
        url, insert(customers_table), [first, same_phone], "customers_phone"
    )


async def test_a_not_null_violation_quotes_no_column_of_the_failing_row(infra: Infra) -> None:
    url = await migrated_database(infra, "notifications")
    details = distinctive()
    nameless = {
        "customer_id": str(uuid.uuid4()),
        "name": None,  # NOT NULL: DETAIL is "Failing row contains (...)", the whole row
        "email": details["email"],
        "phone": details["phone"],
        "email_opt_in": True,
        "sms_opt_in": True,
        "updated_at": datetime.now(UTC),
    }
    await assert_quotes_nothing(
        url, insert(contacts_table), [nameless], 'null value in column "name"'
    )
