"""Guards on the event catalogue: generated docs in sync, schemas backward compatible.

The baselines (``contracts.schemas.BASELINES``) are the data schemas of each event type as first
released. A type version may only evolve compatibly (new optional fields); anything else needs a
new type version (``...v2``) with its own baseline.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from contracts import cli, schemas
from contracts.topics import (
    ALL_TOPICS,
    CUSTOMER_CONTACTS,
    CUSTOMER_CONTACTS_DEAD_LETTERS,
    DEAD_LETTERS,
    TOPOLOGY,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
BASELINES = schemas.BASELINES
EVENT_TYPES = sorted(schemas.catalogue_types())


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(mode="serialization")


# --------------------------------------------------------------------------- (a) docs in sync


def test_committed_docs_match_the_code() -> None:
    differences = schemas.check_docs(DOCS)
    assert differences == [], (
        "The generated event docs in docs/ differ from the code:\n  "
        + "\n  ".join(differences)
        + "\nRun `uv run pizzeria schemas generate` and commit docs/."
    )


def test_write_docs_is_deterministic_and_check_docs_reports_drift(tmp_path: Path) -> None:
    first = schemas.write_docs(tmp_path)
    assert len(first) == len(EVENT_TYPES) + 1
    contents = {p: p.read_bytes() for p in tmp_path.rglob("*.json")}
    assert schemas.write_docs(tmp_path) == []
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.json")} == contents
    assert all(content.endswith(b"}\n") for content in contents.values())
    assert schemas.check_docs(tmp_path) == []

    (tmp_path / "asyncapi.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "events" / f"{EVENT_TYPES[0]}.json").unlink()
    (tmp_path / "events" / "com.mariospizzeria.gone.deleted.v1.json").write_text("{}\n")
    differences = schemas.check_docs(tmp_path)
    assert len(differences) == 3
    assert any(d.startswith("stale ") and "asyncapi.json" in d for d in differences)
    assert any(d.startswith("missing ") and EVENT_TYPES[0] in d for d in differences)
    assert any(d.startswith("extra ") and "gone.deleted" in d for d in differences)

    changes = schemas.write_docs(tmp_path)
    assert any(c.startswith("removed ") and "gone.deleted" in c for c in changes)
    assert schemas.check_docs(tmp_path) == []


def test_cli_check_fails_on_drift_and_generate_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["schemas", "check", "--docs", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "missing" in captured.err
    assert "uv run pizzeria schemas generate" in captured.err
    assert cli.main(["schemas", "generate", "--docs", str(tmp_path)]) == 0
    assert cli.main(["schemas", "check", "--docs", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["differences"] == []


def test_default_docs_directory_is_found_from_a_subdirectory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO_ROOT / "shared" / "eventing" / "src")
    assert schemas.default_docs_directory() == DOCS
    assert schemas.default_docs_directory(REPO_ROOT) == DOCS


# --------------------------------------------------------------------------- (b) baselines


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_schema_is_backward_compatible_with_its_baseline(event_type: str) -> None:
    baseline = BASELINES / f"{event_type}.json"
    assert baseline.is_file(), (
        f"No schema baseline for {event_type}. Add the schema as first released: run "
        f"`uv run pizzeria schemas generate` and copy docs/events/{event_type}.json to "
        f"{BASELINES.relative_to(REPO_ROOT)}/."
    )
    old = json.loads(baseline.read_text(encoding="utf-8"))
    new = schemas.json_schema(schemas.catalogue_types()[event_type])
    problems = schemas.compatibility_problems(old, new)
    assert problems == [], (
        f"{event_type} changed incompatibly since it was released:\n  "
        + "\n  ".join(problems)
        + "\nWithin a version only optional fields may be added; declare a new type version "
        "(…v2) with its own baseline instead."
    )


def test_every_baseline_has_a_registered_type() -> None:
    orphans = sorted(p.stem for p in BASELINES.glob("*.json") if p.stem not in EVENT_TYPES)
    assert orphans == [], (
        f"Baselines without a registered event type: {orphans}. A released type version was "
        "removed or renamed; consumers may still read it. Delete its baseline only when the "
        "type is retired on purpose."
    )


def test_catalogue_has_event_types() -> None:
    assert "com.mariospizzeria.order.placed.v1" in EVENT_TYPES


# --------------------------------------------------------------------------- (c) the rules


class Line(BaseModel):
    pizza: str
    quantity: int


class Before(BaseModel):
    order_id: str
    total: str
    note: str | None = None
    lines: list[Line]


def test_identical_schemas_are_compatible() -> None:
    assert schemas.compatibility_problems(schema_of(Before), schema_of(Before)) == []


def test_removed_field() -> None:
    class After(BaseModel):
        order_id: str
        note: str | None = None
        lines: list[Line]

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert problems == ["field 'total' was removed"]


def test_removed_optional_field() -> None:
    class After(BaseModel):
        order_id: str
        total: str
        lines: list[Line]

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert problems == ["field 'note' was removed"]


def test_retyped_field() -> None:
    class After(BaseModel):
        order_id: str
        total: float
        note: str | None = None
        lines: list[Line]

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert problems == ["field 'total' changed type from string to number"]


def test_nullability_and_format_are_part_of_the_type() -> None:
    class After(BaseModel):
        order_id: str | None
        total: str
        note: Any = None
        lines: list[Line]

    class Stamped(BaseModel):
        at: str

    class StampedAfter(BaseModel):
        at: Any = Field(json_schema_extra={"type": "string", "format": "date-time"})

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert "field 'order_id' changed type from string to null | string" in problems
    assert "field 'note' changed type from null | string to any" in problems
    problems = schemas.compatibility_problems(schema_of(Stamped), schema_of(StampedAfter))
    assert any("string to string (date-time)" in p for p in problems)


def test_optional_field_made_required() -> None:
    class After(BaseModel):
        order_id: str
        total: str
        note: str | None
        lines: list[Line]

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert problems == ["field 'note' was optional and is now required"]


def test_new_required_field() -> None:
    class After(BaseModel):
        order_id: str
        total: str
        note: str | None = None
        lines: list[Line]
        table: int

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert problems == ["field 'table' was added as required (a new field must be optional)"]


def test_new_optional_field_is_allowed() -> None:
    class After(BaseModel):
        order_id: str
        total: str
        note: str | None = None
        lines: list[Line]
        table: int | None = None
        source: str = Field(default="web", description="Where the order came from.")
        tags: tuple[str, ...] = ()

    assert schemas.compatibility_problems(schema_of(Before), schema_of(After)) == []


def test_description_and_default_changes_are_allowed() -> None:
    class After(BaseModel):
        order_id: str = Field(description="Now documented.")
        total: str
        note: str | None = "none"
        lines: list[Line]

    assert schemas.compatibility_problems(schema_of(Before), schema_of(After)) == []


def test_nested_model_change_in_an_array() -> None:
    class NewLine(BaseModel):
        pizza: int
        size: str

    class After(BaseModel):
        order_id: str
        total: str
        note: str | None = None
        lines: list[NewLine]

    problems = schemas.compatibility_problems(schema_of(Before), schema_of(After))
    assert sorted(problems) == [
        "field 'lines[].pizza' changed type from string to integer",
        "field 'lines[].quantity' was removed",
        "field 'lines[].size' was added as required (a new field must be optional)",
    ]


def test_nested_optional_model_and_map_values() -> None:
    class Address(BaseModel):
        street: str
        zip: str

    class AddressAfter(BaseModel):
        street: str
        zip: int
        floor: int | None = None

    class Old(BaseModel):
        delivery: Address | None = None
        by_name: dict[str, Address]

    class New(BaseModel):
        delivery: AddressAfter | None = None
        by_name: dict[str, AddressAfter]

    problems = schemas.compatibility_problems(schema_of(Old), schema_of(New))
    assert sorted(problems) == [
        "field 'by_name{}.zip' changed type from string to integer",
        "field 'delivery.zip' changed type from string to integer",
    ]


def test_allowed_values_and_constraints() -> None:
    class Size(StrEnum):
        SMALL = "small"
        LARGE = "large"

    class BiggerSize(StrEnum):
        SMALL = "small"
        LARGE = "large"
        FAMILY = "family"

    class Old(BaseModel):
        size: Size
        kind: Literal["pizza"]
        quantity: int = Field(ge=1)

    class New(BaseModel):
        size: BiggerSize
        kind: str
        quantity: int = Field(ge=2)

    problems = schemas.compatibility_problems(schema_of(Old), schema_of(New))
    assert sorted(problems) == [
        "field 'kind' is no longer restricted to the values ['pizza']",
        "field 'quantity' changed constraint minimum from 1 to 2",
        "field 'size' changed its allowed values (added ['family'], removed [])",
    ]


def test_recursive_models_terminate() -> None:
    class Node(BaseModel):
        name: str
        children: list[Node] = []

    class NodeAfter(BaseModel):
        name: int
        children: list[NodeAfter] = []

    assert schemas.compatibility_problems(schema_of(Node), schema_of(Node)) == []
    problems = schemas.compatibility_problems(schema_of(Node), schema_of(NodeAfter))
    assert problems == ["field 'name' changed type from string to integer"]


def test_envelope_changes_are_problems() -> None:
    model = schemas.catalogue_types()[EVENT_TYPES[0]]
    old = schemas.json_schema(model)
    new = {**old, "x-topic": "pizzeria.elsewhere"}
    problems = schemas.compatibility_problems(old, new)
    assert problems == [f"topic changed from {model.topic!r} to 'pizzeria.elsewhere'"]


# --------------------------------------------------------------------------- data schemas


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_json_schema_of_each_type(event_type: str) -> None:
    model = schemas.catalogue_types()[event_type]
    schema = schemas.json_schema(model)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://schemas.mariospizzeria.com/events/{event_type}.json"
    assert schema["title"]
    assert schema["x-cloudevents-type"] == event_type
    assert schema["x-topic"] == model.topic
    assert schema["x-aggregate"] == model.aggregate
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {
        field.serialization_alias or field.alias or name
        for name, field in model.model_fields.items()
    }


# --------------------------------------------------------------------------- (d) AsyncAPI


def test_asyncapi_lists_every_topic_and_event_type() -> None:
    document = schemas.asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    channels = document["channels"]
    assert {channel["address"] for channel in channels.values()} == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        kafka = channels[topic.name]["bindings"]["kafka"]
        assert kafka["topic"] == topic.name
        assert kafka["partitions"] == topic.partitions
        assert topic.description in channels[topic.name]["description"]

    messages = document["components"]["messages"]
    for event_type, model in schemas.catalogue_types().items():
        message = messages[event_type]
        headers = message["headers"]["properties"]
        assert headers["ce_type"]["const"] == event_type
        for name in (
            "ce_id",
            "ce_source",
            "ce_specversion",
            "ce_time",
            "ce_subject",
            "ce_partitionkey",
            "ce_traceparent",
            "content-type",
        ):
            assert name in headers, f"{event_type}: header {name} not documented"
        assert "ce_traceparent" not in message["headers"]["required"]
        assert message["payload"]["schema"]["$ref"] == f"events/{event_type}.json"
        assert (DOCS / message["payload"]["schema"]["$ref"]).is_file()
        assert model.aggregate in message["bindings"]["kafka"]["key"]["description"]
        assert channels[model.topic]["messages"][event_type] == {
            "$ref": f"#/components/messages/{event_type}"
        }
        operation = document["operations"][f"send.{event_type}"]
        assert operation["channel"] == {"$ref": f"#/channels/{model.topic}"}

    assert channels["pizzeria.orders"]["x-message-key"] == "order id"


def test_asyncapi_dead_letters_and_restricted_topics() -> None:
    document = schemas.asyncapi_document()
    channels = document["channels"]
    dead_letters = channels[DEAD_LETTERS.name]
    (reference,) = dead_letters["messages"].values()
    message = document["components"]["messages"][reference["$ref"].rsplit("/", 1)[-1]]
    headers = message["headers"]["properties"]
    for name in (
        "dlq_reason",
        "dlq_group",
        "dlq_handler",
        "dlq_topic",
        "dlq_partition",
        "dlq_offset",
        "dlq_time",
    ):
        assert name in headers
        assert name in message["headers"]["required"]

    for name in (CUSTOMER_CONTACTS.name, CUSTOMER_CONTACTS_DEAD_LETTERS.name):
        restricted = channels[name]
        assert restricted["x-data-classification"] == "restricted"
        assert restricted["x-personal-data"] is True
        assert [tag["name"] for tag in restricted["tags"]] == ["restricted"]
    unrestricted = [name for name in channels if name not in TOPOLOGY.restricted]
    assert all("x-personal-data" not in channels[name] for name in unrestricted)
    # The contacts topic's dead letters have a restricted topic of their own, compacted like it.
    contacts = channels[CUSTOMER_CONTACTS.name]
    assert contacts["x-dead-letter-topic"] == CUSTOMER_CONTACTS_DEAD_LETTERS.name
    assert channels[CUSTOMER_CONTACTS_DEAD_LETTERS.name]["messages"] == dead_letters["messages"]
    assert (
        channels[CUSTOMER_CONTACTS_DEAD_LETTERS.name]["bindings"]["kafka"]["x-topic-config"]
        == contacts["bindings"]["kafka"]["x-topic-config"]
    )
    assert all(
        channels[name]["x-dead-letter-topic"] == DEAD_LETTERS.name
        for name in ("pizzeria.orders", "pizzeria.kitchen", "pizzeria.menu")
    )
    for name in ("dlq_value_truncated", "dlq_value_bytes", "dlq_value_sha256"):
        assert name in headers and name not in message["headers"]["required"]


def test_asyncapi_references_resolve() -> None:
    document = schemas.asyncapi_document()

    def references(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in references(value)]
        if isinstance(node, list):
            return [r for value in node for r in references(value)]
        return []

    for reference in references(document):
        if not reference.startswith("#/"):
            continue
        node: Any = document
        for part in reference[2:].split("/"):
            assert part in node, f"unresolvable reference {reference}"
            node = node[part]
