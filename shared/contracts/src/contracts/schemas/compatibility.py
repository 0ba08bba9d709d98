"""The rules for changing an event type *within* its version, and the baselines they guard.

Fields may be added if optional; removing a field, changing its type or allowed values, making
an optional field required or adding a required one needs a new type version (``...v2``).
``BASELINES`` holds each type's data schema as first released (``<event type>.json``); the unit
tests compare every type of the catalogue with its baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["BASELINES", "compatibility_problems"]

BASELINES = Path(__file__).resolve().parent / "baselines"

# Keywords that restrict valid values: changing one within a version breaks readers either way.
_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
_ENVELOPE_KEYS = (
    ("x-cloudevents-type", "CloudEvents type"),
    ("x-topic", "topic"),
    ("x-aggregate", "aggregate"),
)
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)

_Alternative = tuple[dict[str, Any], str | None]


def _json_type(value: Any) -> str:
    for python_type, name in _JSON_TYPES:
        if isinstance(value, python_type):
            return name
    return "any"


def _where(path: str) -> str:
    return f"field '{path}'" if path else "the event data"


def _allowed_values(node: Mapping[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    enum = node.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _label(node: Mapping[str, Any]) -> str:
    if "$ref" in node:
        return f"reference {node['$ref']}"
    kind = node.get("type")
    if kind is None:
        if "properties" in node or "additionalProperties" in node:
            kind = "object"
        elif "items" in node or "prefixItems" in node:
            kind = "array"
        else:
            values = _allowed_values(node)
            kinds = {_json_type(value) for value in values} if values else set()
            kind = kinds.pop() if len(kinds) == 1 else "any"
    if kind == "string" and isinstance(node.get("format"), str):
        return f"string ({node['format']})"
    return str(kind)


class _Comparison:
    """Walks an old and a new schema side by side, collecting incompatibilities."""

    def __init__(self, old_root: Mapping[str, Any], new_root: Mapping[str, Any]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems: list[str] = []
        self._active: set[tuple[str, str]] = set()

    @staticmethod
    def _pointer(root: Mapping[str, Any], reference: str) -> dict[str, Any] | None:
        if not reference.startswith("#"):
            return None
        node: Any = root
        for part in reference[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return dict(node) if isinstance(node, Mapping) else None

    def _resolve(self, root: Mapping[str, Any], node: Mapping[str, Any]) -> _Alternative:
        """Follow local ``$ref``s and one-element ``allOf``s; siblings override the target."""
        current = dict(node)
        reference: str | None = None
        for _ in range(64):
            if isinstance(current.get("$ref"), str):
                target = self._pointer(root, current["$ref"])
                if target is None:
                    break
                reference = current.pop("$ref")
                current = {**target, **current}
            elif isinstance(current.get("allOf"), list) and len(current["allOf"]) == 1:
                (member,) = current.pop("allOf")
                current = {**dict(member), **current}
            else:
                break
        return current, reference

    def _alternatives(self, root: Mapping[str, Any], node: Mapping[str, Any]) -> list[_Alternative]:
        resolved, reference = self._resolve(root, node)
        for union in ("anyOf", "oneOf"):
            members = resolved.get(union)
            if isinstance(members, list):
                found: list[_Alternative] = []
                for member in members:
                    found.extend(self._alternatives(root, member))
                return found
        kinds = resolved.get("type")
        if isinstance(kinds, list):
            return [({**resolved, "type": kind}, reference) for kind in kinds]
        return [(resolved, reference)]

    def compare(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_alternatives = self._alternatives(self.old_root, old)
        new_alternatives = self._alternatives(self.new_root, new)
        old_labels = sorted({_label(node) for node, _ in old_alternatives})
        new_labels = sorted({_label(node) for node, _ in new_alternatives})
        if old_labels != new_labels:
            self.problems.append(
                f"{_where(path)} changed type from {' | '.join(old_labels)} "
                f"to {' | '.join(new_labels)}"
            )
            return
        for label in old_labels:
            olds = [item for item in old_alternatives if _label(item[0]) == label]
            news = [item for item in new_alternatives if _label(item[0]) == label]
            for old_item, new_item in self._pair(olds, news, path):
                self._compare_alternative(old_item, new_item, path)

    def _pair(
        self, olds: list[_Alternative], news: list[_Alternative], path: str
    ) -> list[tuple[_Alternative, _Alternative]]:
        if len(olds) == 1 and len(news) == 1:
            return [(olds[0], news[0])]
        old_titles = [node.get("title") for node, _ in olds]
        new_titles = [node.get("title") for node, _ in news]
        if len(set(old_titles)) == len(olds) and len(set(new_titles)) == len(news):
            pairs = []
            for old_item, title in zip(olds, old_titles, strict=True):
                if title in new_titles:
                    pairs.append((old_item, news[new_titles.index(title)]))
                else:
                    self.problems.append(f"{_where(path)} no longer accepts {title!r}")
            for title in new_titles:
                if title not in old_titles:
                    self.problems.append(f"{_where(path)} now also accepts {title!r}")
            return pairs
        if len(olds) != len(news):
            self.problems.append(
                f"{_where(path)} changed its union alternatives ({len(olds)} to {len(news)})"
            )
            return []
        return list(zip(olds, news, strict=True))

    def _compare_alternative(self, old: _Alternative, new: _Alternative, path: str) -> None:
        (old_node, old_ref), (new_node, new_ref) = old, new
        # The same pair of definitions inside itself (a recursive model): compared already.
        guard = (old_ref or "", new_ref or "")
        if old_ref is not None and new_ref is not None:
            if guard in self._active:
                return
            self._active.add(guard)
            try:
                self._compare_node(old_node, new_node, path)
            finally:
                self._active.discard(guard)
        else:
            self._compare_node(old_node, new_node, path)

    def _compare_node(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        where = _where(path)
        old_values, new_values = _allowed_values(old), _allowed_values(new)
        if old_values is None and new_values is not None:
            self.problems.append(f"{where} is now restricted to the values {new_values!r}")
        elif old_values is not None and new_values is None:
            self.problems.append(f"{where} is no longer restricted to the values {old_values!r}")
        elif old_values is not None and new_values is not None:
            added = [value for value in new_values if value not in old_values]
            removed = [value for value in old_values if value not in new_values]
            if added or removed:
                self.problems.append(
                    f"{where} changed its allowed values (added {added!r}, removed {removed!r})"
                )
        for keyword in _CONSTRAINTS:
            if old.get(keyword) != new.get(keyword):
                self.problems.append(
                    f"{where} changed constraint {keyword} from {old.get(keyword)!r} "
                    f"to {new.get(keyword)!r}"
                )
        if _label(old) == "object":
            self._compare_object(old, new, path)
        elif _label(old) == "array":
            self._compare_array(old, new, path)

    def _compare_object(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_fields: Mapping[str, Any] = old.get("properties") or {}
        new_fields: Mapping[str, Any] = new.get("properties") or {}
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        for name, old_field in old_fields.items():
            child = f"{path}.{name}" if path else name
            if name not in new_fields:
                self.problems.append(f"{_where(child)} was removed")
                continue
            if name not in old_required and name in new_required:
                self.problems.append(f"{_where(child)} was optional and is now required")
            self.compare(old_field, new_fields[name], child)
        for name in new_fields:
            if name not in old_fields and name in new_required:
                child = f"{path}.{name}" if path else name
                self.problems.append(
                    f"{_where(child)} was added as required (a new field must be optional)"
                )
        old_values, new_values = old.get("additionalProperties"), new.get("additionalProperties")
        if isinstance(old_values, Mapping) and isinstance(new_values, Mapping):
            self.compare(old_values, new_values, f"{path}{{}}")
        elif isinstance(old_values, Mapping) != isinstance(new_values, Mapping):
            self.problems.append(f"{_where(path)} changed whether it is a map of values")

    def _compare_array(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str) -> None:
        old_items, new_items = old.get("items"), new.get("items")
        if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
            self.compare(old_items, new_items, f"{path}[]")
        elif isinstance(old_items, Mapping) != isinstance(new_items, Mapping):
            self.problems.append(f"{_where(path)} changed the type of its items")
        old_tuple, new_tuple = old.get("prefixItems"), new.get("prefixItems")
        if isinstance(old_tuple, list) and isinstance(new_tuple, list):
            if len(old_tuple) != len(new_tuple):
                self.problems.append(
                    f"{_where(path)} changed from {len(old_tuple)} to {len(new_tuple)} items"
                )
            for index, (old_item, new_item) in enumerate(zip(old_tuple, new_tuple, strict=False)):
                self.compare(old_item, new_item, f"{path}[{index}]")
        elif isinstance(old_tuple, list) != isinstance(new_tuple, list):
            self.problems.append(f"{_where(path)} changed between a list and a fixed-size tuple")


def compatibility_problems(old_schema: dict[str, Any], new_schema: dict[str, Any]) -> list[str]:
    """Why data of ``new_schema`` breaks readers of ``old_schema`` of the same type version.

    Backward compatibility within a version means that consumers written against either schema
    read events produced with the other: a field may be added only as optional. A removed field,
    a changed type (including format, nullability and allowed values), a changed constraint, an
    optional field made required and a new required field are problems. Nested objects, arrays,
    maps, unions and ``$ref``s (into each schema's own ``$defs``) are walked; descriptions,
    titles, examples and defaults are not compared. An empty list means compatible.
    """
    problems: list[str] = []
    for key, what in _ENVELOPE_KEYS:
        if key in old_schema and old_schema.get(key) != new_schema.get(key):
            problems.append(f"{what} changed from {old_schema[key]!r} to {new_schema.get(key)!r}")
    comparison = _Comparison(old_schema, new_schema)
    comparison.compare(old_schema, new_schema, "")
    return problems + comparison.problems
