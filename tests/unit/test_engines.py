"""Every SQLAlchemy engine keeps bound values out of its error texts (no database needed)."""

from __future__ import annotations

import ast

from eventing.database import create_engine, new_engine
from tests.support.infra import ROOT

URL = "postgresql+asyncpg://pizzeria:pizzeria@127.0.0.1:1/nowhere"  # never connected to
SQLALCHEMY_FACTORIES = {"create_engine", "create_async_engine"}


def test_the_service_engine_hides_bound_parameters() -> None:
    engine = create_engine(URL, application_name="unit-test")
    assert engine.sync_engine.hide_parameters is True


def test_a_single_use_engine_hides_bound_parameters_too() -> None:
    assert new_engine(URL).sync_engine.hide_parameters is True


def test_no_code_makes_an_engine_but_the_shared_factory() -> None:
    """An engine made with SQLAlchemy's own factory would quote customers' details in errors."""
    factory = ROOT / "shared" / "eventing" / "src" / "eventing" / "database.py"
    offenders = []
    for directory in ("shared", "services", "bench"):
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path == factory:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                imported = (
                    isinstance(node, ast.ImportFrom)
                    and (node.module or "").startswith("sqlalchemy")
                    and any(alias.name in SQLALCHEMY_FACTORIES for alias in node.names)
                )
                called = isinstance(node, ast.Attribute) and node.attr in SQLALCHEMY_FACTORIES
                if imported or (called and "sqlalchemy" in ast.unparse(node)):
                    offenders.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}")
    assert offenders == []
