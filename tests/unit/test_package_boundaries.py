"""The shared code is three packages with arrows one way: services -> service_kit and contracts ->
eventing. The runtime (eventing) is generic: it imports no web framework and names nothing of
the pizzeria, so a reader can take it to another system as it is."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
SERVICES = ("orders", "kitchen", "notifications", "analytics")

# What each shared package may import of the project's own packages.
ALLOWED = {
    "eventing": {"eventing"},
    "service_kit": {"eventing", "service_kit"},
    # The `pizzeria` CLI (contracts.cli) mints tokens with the kit's auth settings.
    "contracts": {"eventing", "contracts", "service_kit"},
}
OWN = {"eventing", "contracts", "service_kit", *SERVICES, "tests", "bench"}
WEB_FRAMEWORKS = {"fastapi", "starlette", "uvicorn", "jwt", "httpx"}
# Words of the pizzeria's domain; the runtime's identifiers and string literals use none of them
# ("driver" is left out: the runtime speaks of database drivers).
DOMAIN_WORDS = re.compile(
    r"(?i)(?<![a-z])(orders?|pizzas?|pizzeria|mariospizzeria|toppings?|kitchen|chef|"
    r"customers?|roles?|menu|analytics|notifications)(?![a-z])"
)


SQL_ORDER_BY = re.compile(r"(?i)\border by\b")


def modules(package: str) -> Iterator[Path]:
    yield from sorted((SHARED / package / "src" / package).rglob("*.py"))


def imported(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in imported(path)
        if name.split(".")[0] in OWN and name.split(".")[0] not in ALLOWED[package]
    ]
    assert wrong == []


def test_the_runtime_imports_no_web_framework() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules("eventing")
        for name in imported(path)
        if name.split(".")[0] in WEB_FRAMEWORKS
    ]
    assert wrong == []


def _names_and_literals(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.arg):
            yield node.lineno, node.arg
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.lineno, node.name
        elif isinstance(node, ast.keyword) and node.arg:
            yield node.lineno, node.arg
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


def test_the_runtime_names_nothing_of_the_pizzeria() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in modules("eventing")
        for line, text in _names_and_literals(path)
        if DOMAIN_WORDS.search(SQL_ORDER_BY.sub("", text.replace("_", " ")))
    ]
    assert found == []


def test_no_service_imports_another() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for service in SERVICES
        for path in sorted((ROOT / "services" / service / "src").rglob("*.py"))
        for name in imported(path)
        if name.split(".")[0] in set(SERVICES) - {service}
    ]
    assert wrong == []


# A domain layer is rules on values: the standard library, the contracts' payloads, pydantic for
# them, and the kit's Command base; never a database, a broker or a web framework.
DOMAIN_MAY_IMPORT = {"contracts", "eventing.events", "service_kit.commands", "pydantic"}


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_layer_is_pure(service: str) -> None:
    domain = ROOT / "services" / service / "src" / service / "domain"
    stdlib = sys.stdlib_module_names
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted(domain.rglob("*.py"))
        for name in imported(path)
        if name.split(".")[0] not in stdlib
        and not name.startswith(f"{service}.domain")
        and not any(
            name == allowed or name.startswith(allowed + ".") for allowed in DOMAIN_MAY_IMPORT
        )
    ]
    assert wrong == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_shape(service: str) -> None:
    package = ROOT / "services" / service / "src" / service
    for part in (
        "domain",
        "adapters",
        "service_layer/commands.py",
        "service_layer/events.py",
        "entrypoints",
        "entrypoints/routes",
        "bootstrap.py",
        "settings.py",
    ):
        assert (package / part).exists(), f"{service} has no {part}"
    assert not (package / "service_layer" / "handlers.py").exists()


# The distribution each of the project's own packages is.
OWN_DISTRIBUTIONS = {
    "eventing": "mario-eventing",
    "contracts": "mario-contracts",
    "service_kit": "mario-service-kit",
}


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(package: str) -> set[str]:
    """The distributions ``shared/<package>/pyproject.toml`` depends on (extras dropped)."""
    pyproject = tomllib.loads((SHARED / package / "pyproject.toml").read_text(encoding="utf-8"))
    found = (
        re.match(r"[A-Za-z0-9._-]+", dependency)
        for dependency in pyproject["project"]["dependencies"]
    )
    return {_normalised(match.group()) for match in found if match}


def imported_names(path: Path) -> Iterator[str]:
    """Every absolute import, with the name taken (``from a.b import c``: ``a.b.c``)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


@cache
def _providers(top: str) -> list[str]:
    return sorted(set(packages_distributions().get(top, ())))


@cache
def _files_of(name: str) -> frozenset[str]:
    return frozenset(str(file) for file in distribution(name).files or ())


def distribution_of(name: str) -> str | None:
    """The installed distribution that provides the module ``name`` (or the module holding it).

    A namespace package (``opentelemetry``) is spread over several distributions: the one whose
    files hold the longest leading part of ``name`` provides it.
    """
    top = name.split(".")[0]
    if top in OWN_DISTRIBUTIONS:
        return OWN_DISTRIBUTIONS[top]
    candidates = _providers(top)
    if len(candidates) == 1:
        return _normalised(candidates[0])
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        prefix = "/".join(parts[:end])
        owners = [
            candidate
            for candidate in candidates
            if any(
                file == f"{prefix}.py" or file.startswith(f"{prefix}/")
                for file in _files_of(candidate)
            )
        ]
        if len(owners) == 1:
            return _normalised(owners[0])
    return None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_declares_what_it_imports(package: str) -> None:
    """Every distribution a package imports is a dependency in its own pyproject.toml, not one
    it happens to get through another package (service_kit once got FastAPI that way)."""
    dependencies = declared(package) | {OWN_DISTRIBUTIONS[package]}
    undeclared = sorted(
        {
            f"{name.split('.')[0]} ({distribution_of(name) or 'no installed distribution'})"
            for path in modules(package)
            for name in imported_names(path)
            if name.split(".")[0] not in sys.stdlib_module_names | {"__future__"}
            and distribution_of(name) not in dependencies
        }
    )
    assert undeclared == []
