"""JWT bearer authentication with roles, shared by every service's HTTP API.

Two ways of trusting a token, chosen by configuration (``AUTH_`` env prefix):

* **HS256 with a shared secret** (``AUTH_JWT_SECRET``): for tokens minted by ``pizzeria auth
  mint-token`` and the customer tokens of the orders service's sign-in. Whoever holds the secret
  can mint tokens, so it must be random and at least 32 bytes.
* **An OIDC issuer's JWKS** (``AUTH_JWKS_URL``, HTTPS): tokens are signed by the identity
  provider (RS256/ES256) and verified with its published public keys. We hold no private key, so
  we cannot mint tokens in this mode. The provider must put the role names in a top-level
  ``roles`` claim and use ``AUTH_ISSUER`` as ``iss`` and the services' audiences as ``aud``.

Fail closed: ``AUTH_ENVIRONMENT`` is ``production`` unless set, and only
``AUTH_ENVIRONMENT=development`` (which ``make run``, ``make up`` and the tests set) accepts the
public development secret or a JWKS URL that is not HTTPS.

Each service accepts only tokens whose ``aud`` names it (``audience_of("kitchen")`` is
``mariospizzeria-kitchen``), so a token meant for one service is no key to the others, and only
tokens whose lifetime (``exp - iat``) is at most ``AUTH_MAX_TOKEN_LIFETIME_SECONDS``.

Claims: ``sub`` (who), ``roles`` (list of role names), ``iss``, ``aud``, ``exp``, ``iat``.

Wiring, done by each service's composition root (there is deliberately no module-level verifier,
so that settings are read once, by the process that owns them, and tests can build their own)::

    app.state.token_verifier = TokenVerifier(AuthSettings(), audience=audience_of("kitchen"))

    @app.post("/kitchen/tickets/{id}/ready")
    async def ready(
        principal: Annotated[Principal, Depends(require_roles(Role.CHEF, Role.MANAGER))],
    ) -> ...: ...

``require_roles(...)`` answers 401 (``WWW-Authenticate: Bearer``) for a missing, malformed,
expired or otherwise untrusted token and 403 when the principal has none of the roles;
``optional_principal`` gives ``None`` to anonymous callers but still refuses a bad token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Final

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool

# Public by design, so it is refused outside development (see AuthSettings).
DEVELOPMENT_SECRET: Final = "dev-only-insecure-secret-change-me"  # noqa: S105
MINIMUM_SECRET_BYTES: Final = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
HS256: Final = "HS256"
JWKS_ALGORITHMS: Final = ("RS256", "ES256")
REQUIRED_CLAIMS: Final = ("sub", "iss", "aud", "exp", "iat")
DEVELOPMENT: Final = "development"
SERVICES: Final = ("orders", "kitchen", "notifications", "analytics")


def audience_of(service: str) -> str:
    """The ``aud`` a token must carry to be accepted by ``service``."""
    return f"mariospizzeria-{service}"


EVERY_SERVICE: Final = tuple(audience_of(service) for service in SERVICES)


class Role(StrEnum):
    CUSTOMER = "customer"
    CHEF = "chef"
    DRIVER = "driver"
    MANAGER = "manager"
    ANALYST = "analyst"


class AuthSettings(BaseSettings):
    """How tokens are trusted; read from ``AUTH_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", frozen=True)

    # A SecretStr keeps the secret out of reprs, logs and tracebacks of the settings object.
    jwt_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_SECRET),
        description="HS256 signing secret. The default is for development only and is refused "
        "in any other environment.",
    )
    issuer: str = "mariospizzeria"
    jwks_url: str | None = Field(
        default=None,
        description="JWKS endpoint of the OIDC issuer (https://). When set, tokens are verified "
        "with its public keys (RS256/ES256) instead of the HS256 secret.",
    )
    environment: str = Field(
        default="production",
        description="Only 'development' accepts the development secret and a plain-HTTP JWKS "
        "URL; anything else, the default included, refuses them.",
    )
    max_token_lifetime_seconds: int = Field(
        default=12 * 3600,
        gt=0,
        description="The longest lifetime (exp - iat) of a token this service accepts or mints: "
        "a stolen token is worth at most this long.",
    )
    leeway_seconds: float = Field(
        default=30,
        ge=0,
        le=300,
        description="Tolerated clock difference between the token's issuer and this host "
        "when checking exp and iat.",
    )

    @property
    def uses_jwks(self) -> bool:
        return bool(self.jwks_url)

    @property
    def is_development(self) -> bool:
        return self.environment == DEVELOPMENT

    @model_validator(mode="after")
    def _refuse_weak_secret_outside_development(self) -> AuthSettings:
        if self.is_development:
            return self
        if self.jwks_url is not None:
            # Keys fetched over plain HTTP can be swapped by anyone on the path, and then any
            # token they sign is trusted.
            if not self.jwks_url.lower().startswith("https://"):
                raise ValueError(
                    f"AUTH_JWKS_URL must be an https:// URL when "
                    f"AUTH_ENVIRONMENT={self.environment!r}"
                )
            # In JWKS mode the secret neither signs nor verifies anything (mint_token refuses),
            # so there is nothing to protect and no reason to make operators invent one.
            return self
        secret = self.jwt_secret.get_secret_value()
        if secret == DEVELOPMENT_SECRET:
            raise ValueError(
                f"AUTH_JWT_SECRET is the development default, which is public; set a random "
                f"secret of at least {MINIMUM_SECRET_BYTES} bytes (or AUTH_JWKS_URL) when "
                f"AUTH_ENVIRONMENT={self.environment!r} (AUTH_ENVIRONMENT=development accepts "
                f"it, for a machine of your own)"
            )
        if len(secret.encode()) < MINIMUM_SECRET_BYTES:
            raise ValueError(
                f"AUTH_JWT_SECRET is {len(secret.encode())} bytes; HS256 needs at least "
                f"{MINIMUM_SECRET_BYTES} when AUTH_ENVIRONMENT={self.environment!r}"
            )
        return self


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who (``sub``), what they may do (``roles``), and every claim."""

    subject: str
    roles: frozenset[Role]
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def has_any(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)


class AuthenticationError(Exception):
    """The token cannot be trusted; ``reason`` is safe to show to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningKeysUnavailableError(AuthenticationError):
    """The issuer's JWKS could not be fetched: our problem, not the caller's (HTTP 503)."""


class TokenVerifier:
    """Checks a bearer token's signature, ``exp``, ``iss`` and ``aud`` and yields a Principal.

    Build one per process (the composition root stores it on ``app.state.token_verifier``): in
    JWKS mode it owns the key cache, which is what spares a round trip to the issuer per request.
    ``verify`` may block on that round trip when the cache is cold or stale (``may_block``), so
    the FastAPI dependencies below then call it in the thread pool.
    """

    def __init__(
        self, settings: AuthSettings, *, audience: str, jwks_timeout_seconds: float = 5
    ) -> None:
        self._settings = settings
        self._audience = audience
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwks_url:
            # The whole key set is cached for five minutes, so a key the issuer rotates out stops
            # being trusted soon after; the per-kid LRU cache is left off because it never expires.
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url,
                cache_jwk_set=True,
                lifespan=300,
                cache_keys=False,
                timeout=jwks_timeout_seconds,
            )

    @property
    def settings(self) -> AuthSettings:
        return self._settings

    @property
    def may_block(self) -> bool:
        """True when ``verify`` may fetch the issuer's keys (JWKS mode); an HS256 check is pure
        CPU, a few microseconds, and runs on the event loop."""
        return self._jwks is not None

    def verify(self, token: str) -> Principal:
        """The principal the token speaks for; raises AuthenticationError otherwise."""
        settings = self._settings
        try:
            key: jwt.PyJWK | str
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token)
                algorithms = list(JWKS_ALGORITHMS)
            else:
                key = settings.jwt_secret.get_secret_value()
                algorithms = [HS256]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError) as error:
            raise SigningKeysUnavailableError(
                "the issuer's signing keys are unavailable"
            ) from error
        except jwt.PyJWKClientError as error:
            raise AuthenticationError("no signing key of the issuer matches the token") from error
        except jwt.PyJWTError as error:
            raise AuthenticationError(_reason(error)) from error
        _check_lifetime(claims, settings)
        return _principal(claims)


def _check_lifetime(claims: dict[str, Any], settings: AuthSettings) -> None:
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise AuthenticationError("token's 'iat' and 'exp' claims are not numbers")
    if issued > time.time() + settings.leeway_seconds:
        raise AuthenticationError("token is issued in the future")
    if expires - issued > settings.max_token_lifetime_seconds:
        raise AuthenticationError(
            f"token lives longer than the {settings.max_token_lifetime_seconds} s allowed"
        )


def _reason(error: jwt.PyJWTError) -> str:
    # Order matters: InvalidSignatureError is a DecodeError.
    reasons: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
        (jwt.ExpiredSignatureError, "token expired"),
        (jwt.InvalidSignatureError, "invalid token signature"),
        (jwt.InvalidAudienceError, "token is not for this audience"),
        (jwt.InvalidIssuerError, "token is from an untrusted issuer"),
        (jwt.ImmatureSignatureError, "token is not valid yet"),
        (jwt.InvalidAlgorithmError, "token signing algorithm not allowed"),
        (jwt.DecodeError, "malformed token"),
    )
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"token lacks the {error.claim!r} claim"
    for kind, reason in reasons:
        if isinstance(error, kind):
            return reason
    return "invalid token"


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise AuthenticationError("token has an empty subject")
    names = claims.get("roles", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise AuthenticationError("token's 'roles' claim is not a list of role names")
    # Unknown names are ignored rather than refused: the issuer may know roles of other systems,
    # and a role added here later must not invalidate tokens already in circulation.
    known = {role.value for role in Role}
    roles = frozenset(Role(name) for name in names if name in known)
    return Principal(subject=subject, roles=roles, claims=claims)


def mint_token(
    settings: AuthSettings,
    subject: str,
    roles: Iterable[Role],
    ttl_seconds: int = 3600,
    *,
    audiences: Iterable[str] = EVERY_SERVICE,
) -> str:
    """An HS256 token for ``subject`` with ``roles``, valid for ``ttl_seconds``, accepted by the
    services whose audiences it names (by default every service: a member of staff's token).

    Refused in JWKS mode: there the identity provider signs tokens and we hold no private key,
    and a secret-signed token would not verify anyway.
    """
    if settings.uses_jwks:
        raise ValueError(
            "cannot mint tokens when AUTH_JWKS_URL is set: the identity provider signs them"
        )
    if not subject:
        raise ValueError("subject must not be empty")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    if ttl_seconds > settings.max_token_lifetime_seconds:
        raise ValueError(
            f"ttl_seconds {ttl_seconds} is longer than AUTH_MAX_TOKEN_LIFETIME_SECONDS "
            f"({settings.max_token_lifetime_seconds})"
        )
    audience = sorted(set(audiences))
    if not audience:
        raise ValueError("a token needs at least one audience")
    now = int(time.time())
    claims = {
        "sub": subject,
        "roles": sorted(Role(role).value for role in set(roles)),
        "iss": settings.issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=HS256)


# ------------------------------------------------------------------------------------ FastAPI

# Stateless: it only parses the header (auto_error=False lets us answer with our own reasons)
# and declares the bearer security scheme in the OpenAPI document.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="A JWT from the identity provider or `pizzeria auth mint-token`.",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=reason, headers={"WWW-Authenticate": "Bearer"}
    )


def _verifier(request: Request) -> TokenVerifier:
    verifier = getattr(request.app.state, "token_verifier", None)
    if not isinstance(verifier, TokenVerifier):
        # A wiring mistake, not the caller's: let it surface as a 500 with a clear message.
        raise RuntimeError(
            "app.state.token_verifier is not set: the service's composition root must store a "
            "TokenVerifier there before serving authenticated routes"
        )
    return verifier


async def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials) -> Principal:
    verifier = _verifier(request)
    try:
        if verifier.may_block:
            # A JWKS fetch must not block the event loop; the thread hop is paid only here.
            return await run_in_threadpool(verifier.verify, credentials.credentials)
        return verifier.verify(credentials.credentials)
    except SigningKeysUnavailableError as error:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=error.reason) from error
    except AuthenticationError as error:
        raise _unauthorized(error.reason) from error


async def optional_principal(request: Request, credentials: BearerCredentials) -> Principal | None:
    """The caller's principal, or None without an Authorization header (401 if it is bad).

    A header that is present but not a usable bearer token (``Basic ...``, ``Bearer`` alone) is
    refused rather than treated as anonymous, so a client bug does not silently lose identity.
    """
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized("the Authorization header is not a bearer token")
        return None
    return await _authenticate(request, credentials)


def require_roles(
    *roles: Role,
) -> Callable[[Request, BearerCredentials], Coroutine[Any, Any, Principal]]:
    """A dependency admitting a caller with a valid token and at least one of ``roles``.

    With no roles, any authenticated caller is admitted. Use it as
    ``Annotated[Principal, Depends(require_roles(Role.CHEF, Role.MANAGER))]``.
    """
    wanted = frozenset(roles)
    names = ", ".join(sorted(role.value for role in wanted))

    async def dependency(request: Request, credentials: BearerCredentials) -> Principal:
        if credentials is None:
            raise _unauthorized("missing bearer token")
        principal = await _authenticate(request, credentials)
        if wanted and not principal.has_any(*wanted):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, detail=f"requires one of the roles: {names}"
            )
        return principal

    return dependency
