"""FastAPI dependencies of the analytics API, as ``Annotated`` aliases, and what its routes may
answer besides success."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from analytics.bootstrap import AnalyticsService
from analytics.domain.window import Bucket, Window
from service_kit import service
from service_kit.auth import Principal, Role, require_roles
from service_kit.http import error_responses
from service_kit.inputs import IDENTIFIER_CONSTRAINTS, Rfc3339

ServiceDep = service.ServiceDep[AnalyticsService]
AnalystDep = Annotated[Principal, Depends(require_roles(Role.ANALYST, Role.MANAGER))]


async def _window(
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


def analyst_responses(
    *codes: int, examples: Mapping[int, Mapping[str, Any]] | None = None, **descriptions: str
) -> dict[int | str, dict[str, Any]]:
    """Every analytics route but the dashboard needs an analyst's token and reads a window of
    time: 401, 403 and 422, plus ``codes``."""
    return error_responses(
        401,
        403,
        *codes,
        422,
        examples={
            403: {"detail": "requires one of the roles: analyst, manager"},
            **(examples or {}),
        },
        _401="No valid bearer token (`WWW-Authenticate: Bearer`).",
        _403="The token has neither the analyst nor the manager role.",
        _422="A bad `from`, `to`, `bucket` or `limit` (the detail names it): times must be "
        "RFC 3339 with their offset.",
        **descriptions,
    )
