"""FastAPI dependencies of the analytics API, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from analytics.domain.window import Bucket, Window
from service_kit.auth import Principal, Role, require_roles
from service_kit.inputs import IDENTIFIER_CONSTRAINTS, Rfc3339

AnalystDep = Annotated[Principal, Depends(require_roles(Role.ANALYST, Role.MANAGER))]


def _window(
    since: Annotated[
        Rfc3339 | None,
        Query(
            alias="from",
            description="Orders placed at or after this time (RFC 3339, with its offset).",
            examples=["2026-11-26T18:00:00Z"],
        ),
    ] = None,
    until: Annotated[
        Rfc3339 | None,
        Query(
            alias="to",
            description="Orders placed before this time (RFC 3339, with its offset). Not later "
            "than `from`: an empty window, every count zero.",
            examples=["2026-11-26T23:00:00+01:00"],
        ),
    ] = None,
) -> Window:
    return Window(since, until)


WindowDep = Annotated[Window, Depends(_window)]
BucketQuery = Annotated[Bucket, Query(description="Time bucket (UTC): hour or day.")]
OrderId = Annotated[
    str,
    Path(
        description="The order's id.",
        examples=["01a2173f-2a59-7101-9f24-859a52435820"],
        **IDENTIFIER_CONSTRAINTS,
    ),
]
