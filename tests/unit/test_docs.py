"""The documentation keeps up with the code: links resolve, the README stays a front door, and
every settings table shows the settings' real defaults and leaves no setting out.

Settings tables are the Markdown tables whose header is exactly
``| Variable | Default | Meaning |``. Each row names one environment variable in backticks
(``<SERVICE>`` stands for any one-word service prefix: ``ORDERS``, ``KITCHEN``...) and its
default: a value in backticks (numbers are compared as numbers, ``""`` is the empty string), or
``(required)``, ``(none)`` or ``(development secret)`` for a secret whose default only
development accepts. A variable is documented once.

The settings classes are found from the per-service settings modules alone (``orders.settings``
and the others): the classes they define or import, the classes in the modules those classes
come from, and the settings classes their fields hold. A class with an ``env_prefix`` is read
from the environment; its variables are that prefix and each field's name, upper-cased.
"""

from __future__ import annotations

import importlib
import re
import sys
import typing
import unicodedata
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 170
SERVICES = ("orders", "kitchen", "notifications", "analytics")
SETTINGS_MODULES = tuple(f"{service}.settings" for service in SERVICES)
SETTINGS_HEADER = ("Variable", "Default", "Meaning")
SPECIAL_DEFAULTS = ("(required)", "(none)", "(development secret)")
PLACEHOLDER = "<SERVICE>"


def markdown_files() -> list[Path]:
    files = [README, *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "services").glob("*/README.md"))
    return files


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- Markdown -------------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the target ends at whitespace or the closing bracket.
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: the rendered text, lower-cased, without punctuation, with
    spaces as hyphens."""
    text = INLINE_CODE.sub(lambda match: match[2], heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("**", "").replace("__", "")
    text = text.strip().lower()
    kept = []
    for char in text:
        if char in " -_" or unicodedata.category(char)[0] in "LNM":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    counts: dict[str, int] = {}
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match[2])
        seen = counts.get(base, 0)
        counts[base] = seen + 1
        found.add(base if seen == 0 else f"{base}-{seen}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(path):
        without_code = INLINE_CODE.sub("", line)
        found += [(number, match[1]) for match in LINK.finditer(without_code)]
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{_relative(path)}:{number}: {target}"
        if not resolved.exists():
            problems.append(f"{where}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where}: no heading #{anchor} in {_relative(resolved)}")
    return problems


def table_rows(path: Path) -> list[tuple[int, list[list[str]]]]:
    """Every table of the file: its first line's number and its rows of cells (header first,
    without the separator row)."""
    tables: list[tuple[int, list[list[str]]]] = []
    current: list[list[str]] | None = None
    for number, line in prose_lines(path):
        stripped = line.strip()
        if not stripped.startswith("|"):
            current = None
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", stripped.strip("|"))]
        if all(re.fullmatch(r":?-+:?", cell) for cell in cells):
            continue
        if current is None:
            current = []
            tables.append((number, current))
        current.append(cells)
    return tables


# --- Settings -------------------------------------------------------------------------------


def _settings_types(annotation: object) -> list[type[BaseSettings]]:
    if isinstance(annotation, type):
        return [annotation] if issubclass(annotation, BaseSettings) else []
    found = []
    for argument in typing.get_args(annotation):
        found += _settings_types(argument)
    return found


def _settings_in(namespace: dict[str, object]) -> list[type[BaseSettings]]:
    return [
        value
        for value in namespace.values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings
    ]


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class the services' settings modules lead to."""
    queue: list[type[BaseSettings]] = []
    for name in SETTINGS_MODULES:
        queue += _settings_in(vars(importlib.import_module(name)))
    found: dict[str, type[BaseSettings]] = {}
    walked_modules: set[str] = set()
    while queue:
        cls = queue.pop()
        key = f"{cls.__module__}.{cls.__qualname__}"
        if key in found or cls.__module__.startswith("pydantic"):
            continue
        found[key] = cls
        for base in cls.__mro__:
            if not (isinstance(base, type) and issubclass(base, BaseSettings)):
                continue
            if base.__module__ in walked_modules or base.__module__.startswith("pydantic"):
                continue
            walked_modules.add(base.__module__)
            queue += _settings_in(vars(sys.modules[base.__module__]))
        for field in cls.model_fields.values():
            queue += _settings_types(field.annotation)
    return sorted(found.values(), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def _is_nested(field: FieldInfo) -> bool:
    """A field holding a settings class of its own (read from its own prefix), not a value."""
    return bool(_settings_types(field.annotation))


def env_name(prefix: str, name: str, field: FieldInfo) -> str:
    alias = field.validation_alias or field.alias
    return (alias if isinstance(alias, str) else prefix + name).upper()


def real_settings() -> dict[str, tuple[str, FieldInfo]]:
    """Environment variable -> (its class, its field), for every class read from the
    environment."""
    variables: dict[str, tuple[str, FieldInfo]] = {}
    for cls in settings_classes():
        prefix = cls.model_config.get("env_prefix") or ""
        if not prefix:
            continue  # a base class: its fields are read through its subclasses' prefixes
        for name, field in cls.model_fields.items():
            if _is_nested(field):
                continue
            variable = env_name(prefix, name, field)
            other = variables.get(variable)
            assert other is None, f"{variable} is read by {other[0]} and {cls.__qualname__}"
            variables[variable] = (cls.__qualname__, field)
    return variables


def rendered_default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    default = field.get_default(call_default_factory=True)
    if default is None:
        return "(none)"
    if isinstance(default, SecretStr):
        return "(development secret)"
    if isinstance(default, bool):
        return "true" if default else "false"
    if default == "":
        return '""'
    return str(default)


def defaults_match(documented: str, field: FieldInfo) -> bool:
    real = rendered_default(field)
    if documented in SPECIAL_DEFAULTS or real in SPECIAL_DEFAULTS:
        return documented == real
    match = re.fullmatch(r"`([^`]*)`", documented)
    if match is None:
        return False
    value = match[1]
    default = field.get_default(call_default_factory=True)
    if isinstance(default, int | float) and not isinstance(default, bool):
        try:
            return float(value) == float(default)
        except ValueError:
            return False
    return value == real


def documented_settings() -> list[tuple[str, str, str]]:
    """(where, variable, default) for every row of every settings table."""
    rows = []
    for path in markdown_files():
        for number, table in table_rows(path):
            if tuple(table[0]) != SETTINGS_HEADER:
                continue
            for offset, cells in enumerate(table[1:], start=2):
                where = f"{_relative(path)}:{number + offset}"
                assert len(cells) == 3, f"{where}: a settings row has three cells: {cells}"
                match = re.fullmatch(r"`([A-Z0-9_<>]+)`", cells[0])
                assert match, f"{where}: the variable is one name in backticks: {cells[0]}"
                rows.append((where, match[1], cells[1]))
    return rows


def matching(variable: str, real: dict[str, tuple[str, FieldInfo]]) -> list[str]:
    pattern = re.escape(variable).replace(re.escape(PLACEHOLDER), "[A-Z]+")
    return sorted(name for name in real if re.fullmatch(pattern, name))


# --- Tests ----------------------------------------------------------------------------------


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


@pytest.mark.parametrize("path", markdown_files(), ids=_relative)
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_the_slugs_are_githubs() -> None:
    assert slug("What `make run` starts") == "what-make-run-starts"
    assert slug("Benchmarks, faults and reconciliation") == "benchmarks-faults-and-reconciliation"
    assert slug("The `pizzeria` CLI") == "the-pizzeria-cli"
    assert slug("Guests and customers") == "guests-and-customers"


def test_the_settings_classes_are_found() -> None:
    prefixes = {cls.model_config.get("env_prefix") for cls in settings_classes()}
    for service in SERVICES:
        assert f"{service.upper()}_" in prefixes
        assert f"{service.upper()}_CONSUMER_" in prefixes
    assert {"ORDERS_RELAY_", "KITCHEN_RELAY_", "AUTH_", "KAFKA_"} <= prefixes


def test_every_documented_default_is_the_real_one() -> None:
    real = real_settings()
    problems = []
    for where, variable, documented in documented_settings():
        names = matching(variable, real)
        if not names:
            problems.append(f"{where}: {variable} is no setting")
        for name in names:
            _, field = real[name]
            if not defaults_match(documented, field):
                problems.append(
                    f"{where}: {name} documented as {documented}, "
                    f"the default is {rendered_default(field)}"
                )
    assert problems == []


def test_every_setting_is_documented_once() -> None:
    real = real_settings()
    documented: dict[str, list[str]] = {name: [] for name in real}
    for where, variable, _ in documented_settings():
        for name in matching(variable, real):
            documented[name].append(where)
    missing = sorted(name for name, places in documented.items() if not places)
    twice = {name: places for name, places in documented.items() if len(places) > 1}
    assert missing == [], "settings no table documents"
    assert twice == {}, "settings documented more than once"
