"""FastAPI dependencies of the analytics API, as ``Annotated`` aliases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Query, status

from analytics.domain.window import Bucket, Window
from eventing.auth import Principal, Role, require_roles

AnalystDep = Annotated[Principal, Depends(require_roles(Role.ANALYST, Role.MANAGER))]


def _window(
    since: Annotated[
        datetime | None,
        Query(alias="from", description="Orders placed at or after (ISO 8601 with offset)."),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(alias="to", description="Orders placed before (ISO 8601 with offset)."),
    ] = None,
) -> Window:
    try:
        return Window(since, until)
    except ValueError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(error)) from error


WindowDep = Annotated[Window, Depends(_window)]
BucketQuery = Annotated[Bucket, Query(description="Time bucket (UTC): hour or day.")]
