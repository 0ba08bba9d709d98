"""A customer's personal data is found only where docs/architecture.md says it may be.

The whole system runs as real processes, each exporting its spans to a file of its own. A
customer with a name, phone, email and address found nowhere else orders, and the order goes
through its whole life: placed, confirmed, cooked by a chef through the kitchen's API, ready,
out for delivery, delivered. On the way the notifications database refuses the customer's
contact twice (a trigger), so ``notifications.contact_updated`` fails with the statement and
its parameters in the error, and is retried until it applies. Then a manager erases the
customer, and the contact record is produced to its topic again, as ``pizzeria dead-letters
replay`` does.

Then every record of every topic (key, value, headers), every log line these processes wrote,
every exported span and every table of every service database is searched for each of the four
values, case-insensitively. They may be on the contacts topic (and its restricted dead-letter
topic) only; after the erasure no database holds them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.topics import CUSTOMER_CONTACTS
from eventing.database import asyncpg_dsn
from service_kit.auth import Role
from tests.support.infra import Infra
from tests.support.kafka import read_every_topic, read_topic
from tests.support.metrics import scrape, value
from tests.support.polling import eventually
from tests.support.processes import TEST_LOG_DIR
from tests.support.system import PROCESSES, System, start_system
from tests.support.tokens import staff

# Where the "Personal data" section of docs/architecture.md allows these values on Kafka.
ALLOWED_TOPICS = {CUSTOMER_CONTACTS.name, f"{CUSTOMER_CONTACTS.name}.deadletter"}
# Fewer refusals than the consumer's retry budget (5 attempts): retried, never dead-lettered.
REFUSALS = 2
T = TypeVar("T")


@dataclass(frozen=True)
class Customer:
    name: str
    phone: str  # as typed into the app
    email: str
    address: str

    @classmethod
    def distinctive(cls) -> Customer:
        tag = uuid.uuid4().hex[:6]
        digits = f"{int(tag, 16) % 10**7:07d}"
        return cls(
            name=f"Ermenegilda Scarpazza-{tag}",
            phone=f"+39 348 {digits[:3]} {digits[3:]}",
            email=f"Ermenegilda.{tag}@Pec-Example.IT",
            address=f"Vicolo dei Tintori {tag}, Firenze",
        )

    def found_in(self, text: str) -> set[str]:
        """Which of the four values ``text`` holds: any case; the phone in any spacing, with or
        without its country code."""
        lowered = text.lower()
        found = {
            field
            for field, wanted in (
                ("name", self.name),
                ("email", self.email),
                ("address", self.address),
            )
            if wanted.lower() in lowered
        }
        national = re.sub(r"\D", "", self.phone)[2:]
        if national in re.sub(r"[\s\-().+]", "", text):
            found.add("phone")
        return found


async def query(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@dataclass
class Run:
    system: System
    trace_files: dict[str, Path]
    log_offsets: dict[str, int]  # where each process's log file ended before it started

    def logged(self) -> dict[str, str]:
        """What this run's processes wrote to their log files."""
        written = {}
        for name, offset in self.log_offsets.items():
            with (TEST_LOG_DIR / f"{name}.log").open("rb") as log:
                log.seek(offset)
                written[name] = log.read().decode(errors="replace")
        return written

    def spans(self) -> dict[str, list[dict[str, Any]]]:
        return {
            name: [json.loads(line) for line in path.read_text().splitlines()]
            for name, path in self.trace_files.items()
            if path.exists()
        }


@pytest.fixture
async def run(infra: Infra, tmp_path: Path) -> AsyncIterator[Run]:
    trace_files = {name: tmp_path / f"{name}.spans.jsonl" for name in PROCESSES}
    log_offsets = {
        name: log.stat().st_size if (log := TEST_LOG_DIR / f"{name}.log").exists() else 0
        for name in PROCESSES
    }
    # Consumer groups of its own, from the end of the topics: another system of the session
    # (or an earlier one on a reused broker) must neither share our partitions nor be replayed.
    group = uuid.uuid4().hex[:8]
    env: dict[str, dict[str, str]] = {
        name: {"EVENTING_TRACE_FILE": str(path)} for name, path in trace_files.items()
    }
    for service in ("orders", "kitchen", "notifications", "analytics"):
        prefix = service.upper()
        env[service][f"{prefix}_CONSUMER_GROUP"] = f"{service}-personal-data-{group}"
        env[service][f"{prefix}_CONSUMER_AUTO_OFFSET_RESET"] = "latest"
    system = await start_system(infra, env=env, log_dir=TEST_LOG_DIR)
    try:
        yield Run(system, trace_files, log_offsets)
    finally:
        system.stop()


async def refuse_the_first_contacts(notifications_url: str, refusals: int) -> None:
    """The notifications database refuses the first ``refusals`` contacts, as a database that
    is briefly unwritable would: the handler fails with the statement and its parameters."""
    for statement in (
        "CREATE SEQUENCE contact_attempts",
        f"""
        CREATE FUNCTION refuse_first_contacts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('contact_attempts') <= {refusals} THEN
                RAISE EXCEPTION 'contacts not writable yet (failover in progress)';
            END IF;
            RETURN NEW;
        END $$
        """,
        "CREATE TRIGGER refuse_first_contacts BEFORE INSERT ON contacts"
        " FOR EACH ROW EXECUTE FUNCTION refuse_first_contacts()",
    ):
        await query(notifications_url, statement)


async def test_personal_data_is_only_where_the_readme_says(run: Run, infra: Infra) -> None:
    system = run.system
    databases = system.databases
    customer = Customer.distinctive()
    await refuse_the_first_contacts(databases["notifications"], REFUSALS)
    manager = staff(Role.MANAGER, subject="manager-anna")
    chef = staff(Role.CHEF, subject="chef-mario")
    driver = staff(Role.DRIVER, subject="driver-luigi")

    async with (
        httpx.AsyncClient(base_url=system.url("orders"), timeout=10) as orders,
        httpx.AsyncClient(base_url=system.url("kitchen"), timeout=10) as kitchen,
        httpx.AsyncClient(base_url=system.url("notifications"), timeout=10) as notifications,
    ):
        placed = await orders.post(
            "/orders",
            json={
                "customer": {
                    "name": customer.name,
                    "phone": customer.phone,
                    "email": customer.email,
                    "address": customer.address,
                },
                "lines": [{"pizza": "Margherita", "size": "large", "quantity": 2}],
            },
        )
        assert placed.status_code == 201, placed.text
        order_id = placed.json()["id"]
        # A guest order: its answer names no customer; staff see the snapshot's id.
        assert placed.json()["customer_id"] is None
        customer_id = (await orders.get(f"/orders/{order_id}", headers=manager)).json()[
            "customer_id"
        ]
        owner = {"X-Tracking-Token": placed.json()["tracking_token"]}
        order_url = f"/orders/{order_id}"

        async def order_status() -> str:
            return str((await orders.get(order_url, headers=owner)).json()["status"])

        confirmed = await orders.post(f"{order_url}/confirm", headers=owner)
        assert confirmed.status_code == 200, confirmed.text
        await eventually(
            lambda: kitchen.get(f"/tickets/{order_id}", headers=chef),
            until=lambda r: r.status_code == 200,
            interval=0.2,
            what="the kitchen's ticket",
        )
        started = await kitchen.post(f"/tickets/{order_id}/start", headers=chef)
        assert started.status_code == 200, started.text
        ready = await kitchen.post(f"/tickets/{order_id}/ready", headers=chef)
        assert ready.status_code == 200, ready.text
        await eventually(
            order_status, until=lambda status: status == "ready", interval=0.2, what="order ready"
        )
        departed = await orders.post(f"{order_url}/departure", headers=driver)
        assert departed.status_code == 200, departed.text
        delivered = await orders.post(f"{order_url}/delivery", headers=driver)
        assert delivered.status_code == 200, delivered.text

        # Received, confirmed (the kitchen's estimate), out for delivery, delivered: by email,
        # SMS and in-app message, once the refused contact got through.
        deliveries = await eventually(
            lambda: query(
                databases["notifications"],
                "SELECT channel, status FROM deliveries WHERE order_id = $1",
                order_id,
            ),
            until=lambda rows: len(rows) == 12 and all(r["status"] == "sent" for r in rows),
            timeout=60,
            interval=0.2,
            what="12 deliveries sent",
        )
        assert len(deliveries) == 12
        [attempts] = await query(
            databases["notifications"], "SELECT last_value FROM contact_attempts"
        )
        assert attempts["last_value"] == REFUSALS + 1  # refused twice, then stored
        assert system.sinks is not None
        emails = [m for m in system.sinks.smtp.received if customer.email.lower() in m.recipients]
        assert len(emails) == 4 and customer.name in emails[0].body
        # The manager's view of the customer is one of the places personal data may be.
        shown = await orders.get(f"/customers/{customer_id}", headers=manager)
        assert customer.found_in(shown.text) == {"name", "phone", "email", "address"}

        erased = await orders.delete(f"/customers/{customer_id}", headers=manager)
        assert erased.status_code == 204, erased.text
        await eventually(
            lambda: query(
                databases["notifications"],
                "SELECT (SELECT count(*) FROM contacts WHERE customer_id = $1) AS contacts,"
                " (SELECT count(*) FROM erased_customers WHERE customer_id = $1) AS marks",
                customer_id,
            ),
            until=lambda rows: (rows[0]["contacts"], rows[0]["marks"]) == (0, 1),
            interval=0.2,
            what="the contact erased in notifications",
        )

        # The contact record, produced again as it is (key, value, headers), as a replay does.
        def is_contact(record: Any) -> bool:
            return bool(record.key == customer_id.encode() and record.value is not None)

        [contact] = [
            record
            for record in await read_topic(
                infra.kafka_bootstrap,
                CUSTOMER_CONTACTS.name,
                until=lambda records: any(is_contact(r) for r in records),
            )
            if is_contact(record)
        ]
        producer = AIOKafkaProducer(**infra.kafka_options(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(
                CUSTOMER_CONTACTS.name,
                key=contact.key,
                value=contact.value,
                headers=list(contact.headers),
            )
        finally:
            await producer.stop()
        group = system.processes["notifications"].env["NOTIFICATIONS_CONSUMER_GROUP"]

        async def skipped_contacts() -> float:
            samples = await scrape(notifications)
            return value(
                samples,
                "consumer_duplicates_skipped_total",
                group=group,
                handler="notifications.contact_updated",
            )

        await eventually(
            skipped_contacts,
            until=lambda skipped: skipped >= 1,
            interval=0.2,
            what="the replay consumed",
        )

    # Everything flushed: log lines and spans are written when the processes end.
    system.stop()

    [stored] = await query(
        databases["orders"], "SELECT * FROM customers WHERE id = $1", customer_id
    )
    assert stored["erased_at"] is not None
    assert customer.found_in(json.dumps(dict(stored), default=str)) == set()
    assert (
        await query(
            databases["notifications"], "SELECT * FROM contacts WHERE customer_id = $1", customer_id
        )
        == []
    )

    where: dict[str, set[str]] = defaultdict(set)
    for record in await read_every_topic(infra.kafka_bootstrap):
        parts = [record.key or b"", record.value or b"", *(v or b"" for _, v in record.headers)]
        for field in customer.found_in(b"\n".join(parts).decode(errors="replace")):
            where[f"topic {record.topic}"].add(field)
    assert f"topic {CUSTOMER_CONTACTS.name}" in where  # the search does find what is there

    # The handler's failures are in the logs and the spans, with the statement: the search
    # below covers what a failing handler writes.
    logged = run.logged()
    retried = [
        line
        for line in logged["notifications"].splitlines()
        if "notifications.contact_updated failed" in line and "not writable" in line
    ]
    assert len(retried) == REFUSALS
    for name, text in logged.items():
        for number, line in enumerate(text.splitlines(), 1):
            for field in customer.found_in(line):
                where[f"log {name} line {number}: {line[:300]}"].add(field)

    spans = run.spans()
    failed = [
        span
        for span in spans["notifications"]
        if span["name"] == "handle notifications.contact_updated" and span["status"] == "ERROR"
    ]
    assert failed and all("INSERT INTO contacts" in span["status_description"] for span in failed)
    for name, documents in spans.items():
        for document in documents:
            for field in customer.found_in(json.dumps(document)):
                where[f"span {name} {document['name']}"].add(field)

    for service, url in databases.items():
        tables = await query(
            url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        for table in tables:
            name = table["table_name"]
            for row in await query(url, f'SELECT t::text AS row FROM "{name}" t'):
                for field in customer.found_in(row["row"]):
                    where[f"database {service} table {name}"].add(field)

    outside = {place: fields for place, fields in where.items() if place.split(" ")[0] != "topic"}
    topics = {place.removeprefix("topic ") for place in where if place.startswith("topic ")}
    assert outside == {}
    assert topics <= ALLOWED_TOPICS
