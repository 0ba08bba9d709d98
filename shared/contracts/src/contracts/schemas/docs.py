"""The generated documentation under ``docs/``: writing it, and checking it against the code.

``pizzeria schemas generate`` writes

    docs/events/<event type>.json   JSON Schema (draft 2020-12) of each type's data
    docs/asyncapi.json              one AsyncAPI 3.0 document: every topic and every event

and ``pizzeria schemas check`` (and a unit test) fails when the committed files drift from the
code. The files are rendered deterministically (sorted keys, two-space indent, trailing newline),
so regenerating an unchanged catalogue changes nothing. ``docs/events/`` belongs to the
generator: a ``.json`` file there without a registered event type is removed on generate.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from contracts.schemas.asyncapi import (
    ASYNCAPI_FILE,
    EVENTS_DIRECTORY,
    asyncapi_document,
    catalogue_types,
    json_schema,
)

__all__ = ["check_docs", "default_docs_directory", "generated_files", "render", "write_docs"]


def render(document: Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """The generated documentation: path relative to the docs directory -> content."""
    files = {
        f"{EVENTS_DIRECTORY}/{event_type}.json": render(json_schema(model))
        for event_type, model in catalogue_types().items()
    }
    files[ASYNCAPI_FILE] = render(asyncapi_document())
    return files


def _extra_files(directory: Path, expected: Mapping[str, str]) -> list[Path]:
    events = directory / EVENTS_DIRECTORY
    if not events.is_dir():
        return []
    return sorted(
        path for path in events.glob("*.json") if f"{EVENTS_DIRECTORY}/{path.name}" not in expected
    )


def write_docs(directory: Path) -> list[str]:
    """Write the generated documentation under ``directory``; return what changed.

    Files whose content is already right are left untouched; ``.json`` files in ``events/``
    without a registered event type are removed.
    """
    expected = generated_files()
    changes: list[str] = []
    for relative, content in expected.items():
        path = directory / relative
        if path.is_file() and path.read_text(encoding="utf-8") == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
        changes.append(f"wrote {path.as_posix()}")
    for path in _extra_files(directory, expected):
        path.unlink()
        changes.append(f"removed {path.as_posix()}")
    return changes


def _first_difference(expected: str, actual: str) -> str:
    wanted, found = expected.splitlines(), actual.splitlines()
    for number, (line, other) in enumerate(zip(wanted, found, strict=False), start=1):
        if line != other:
            return f"line {number}: expected {line.strip()!r}, found {other.strip()!r}"
    if len(wanted) != len(found):
        return f"expected {len(wanted)} lines, found {len(found)}"
    return "whitespace or line endings differ"


def check_docs(directory: Path) -> list[str]:
    """Differences between the files under ``directory`` and the generated documentation."""
    expected = generated_files()
    differences: list[str] = []
    for relative, content in expected.items():
        path = directory / relative
        if not path.is_file():
            differences.append(f"missing {path.as_posix()}")
            continue
        actual = path.read_text(encoding="utf-8")
        if actual != content:
            differences.append(f"stale {path.as_posix()} ({_first_difference(content, actual)})")
    for path in _extra_files(directory, expected):
        differences.append(f"extra {path.as_posix()} (no registered event type {path.stem!r})")
    return differences


def default_docs_directory(start: Path | None = None) -> Path:
    """``docs/`` of the repository containing ``start`` (default: the working directory).

    The repository root is the nearest directory, ``start`` itself or one of its parents, whose
    ``pyproject.toml`` declares the uv workspace (``[tool.uv.workspace]``).
    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        pyproject = candidate / "pyproject.toml"
        if not pyproject.is_file():
            continue
        try:
            settings = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            continue
        if "workspace" in settings.get("tool", {}).get("uv", {}):
            return candidate / "docs"
    raise FileNotFoundError(
        f"no uv workspace root (pyproject.toml with [tool.uv.workspace]) at or above {here}"
    )
