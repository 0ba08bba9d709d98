"""Staff tokens for the tests and the benchmarks, signed with the development secret (the
processes under test run in ``AUTH_ENVIRONMENT=development``)."""

from __future__ import annotations

from service_kit.auth import AuthSettings, Role, mint_token


def staff_token(*roles: Role, subject: str = "staff-1", ttl_seconds: int = 3600) -> str:
    """A JWT for ``subject`` holding ``roles``, accepted by every service."""
    return mint_token(AuthSettings(), subject=subject, roles=roles, ttl_seconds=ttl_seconds)


def authorization(token: str) -> dict[str, str]:
    """The ``Authorization`` header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


def staff(*roles: Role, subject: str = "staff-1") -> dict[str, str]:
    """The ``Authorization`` header of a member of staff holding ``roles``."""
    return authorization(staff_token(*roles, subject=subject))
