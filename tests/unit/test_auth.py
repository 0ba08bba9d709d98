"""JWT bearer authentication (service_kit.auth): tokens, settings, JWKS, FastAPI and the CLI.

No broker or database: the JWKS endpoint is a real ``http.server`` on 127.0.0.1 in a thread, so
PyJWKClient's fetching and caching are exercised as in production.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from contracts import cli
from service_kit.auth import (
    DEVELOPMENT_SECRET,
    EVERY_SERVICE,
    AuthenticationError,
    AuthSettings,
    Principal,
    Role,
    SigningKeysUnavailableError,
    TokenVerifier,
    audience_of,
    mint_token,
    optional_principal,
    require_roles,
)

SECRET = "unit-test-secret-of-at-least-32-bytes!"
OTHER_SECRET = "another-secret-that-is-also-32-bytes-long"
AUDIENCE = audience_of("orders")


@pytest.fixture(autouse=True)
def _no_ambient_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """AuthSettings reads AUTH_*; the developer's shell must not change what these tests see."""
    for name in (
        "JWT_SECRET",
        "ISSUER",
        "AUDIENCE",
        "JWKS_URL",
        "ENVIRONMENT",
        "LEEWAY_SECONDS",
        "MAX_TOKEN_LIFETIME_SECONDS",
    ):
        monkeypatch.delenv(f"AUTH_{name}", raising=False)


@pytest.fixture
def settings() -> AuthSettings:
    return AuthSettings(jwt_secret=SECRET)  # pydantic coerces it to a SecretStr


def claims(settings: AuthSettings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "cust-42",
        "roles": ["customer"],
        "iss": settings.issuer,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return base


def reason_of(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as raised:
        verifier.verify(token)
    return raised.value.reason


# ------------------------------------------------------------------------- tokens (HS256)


def test_minted_token_verifies_to_its_subject_and_roles(settings: AuthSettings) -> None:
    token = mint_token(settings, "chef-mario", [Role.CHEF, Role.MANAGER], ttl_seconds=120)

    principal = TokenVerifier(settings, audience=AUDIENCE).verify(token)

    assert principal.subject == "chef-mario"
    assert principal.roles == frozenset({Role.CHEF, Role.MANAGER})
    assert principal.claims["iss"] == "mariospizzeria"
    assert principal.claims["aud"] == sorted(EVERY_SERVICE)
    assert principal.claims["roles"] == ["chef", "manager"]
    assert principal.claims["exp"] - principal.claims["iat"] == 120
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert principal.has_any(Role.DRIVER, Role.CHEF)
    assert not principal.has_any(Role.DRIVER, Role.ANALYST)


def test_expired_token_is_refused(settings: AuthSettings) -> None:
    now = int(time.time())
    # Beyond the default 30 s leeway for clock differences.
    token = jwt.encode(claims(settings, iat=now - 600, exp=now - 60), SECRET, algorithm="HS256")

    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), token) == "token expired"


def test_token_within_the_clock_leeway_is_accepted(settings: AuthSettings) -> None:
    token = jwt.encode(claims(settings, exp=int(time.time()) - 5), SECRET, algorithm="HS256")

    assert TokenVerifier(settings, audience=AUDIENCE).verify(token).subject == "cust-42"


def test_token_signed_with_another_secret_is_refused(settings: AuthSettings) -> None:
    token = jwt.encode(claims(settings), OTHER_SECRET, algorithm="HS256")

    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), token) == "invalid token signature"


def test_token_for_another_audience_is_refused(settings: AuthSettings) -> None:
    token = jwt.encode(claims(settings, aud="someone-else"), SECRET, algorithm="HS256")

    assert (
        reason_of(TokenVerifier(settings, audience=AUDIENCE), token)
        == "token is not for this audience"
    )


def test_token_from_another_issuer_is_refused(settings: AuthSettings) -> None:
    token = jwt.encode(claims(settings, iss="luigis-pizzeria"), SECRET, algorithm="HS256")

    assert (
        reason_of(TokenVerifier(settings, audience=AUDIENCE), token)
        == "token is from an untrusted issuer"
    )


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "iss", "aud"])
def test_token_lacking_a_required_claim_is_refused(settings: AuthSettings, claim: str) -> None:
    payload = claims(settings)
    del payload[claim]
    token = jwt.encode(payload, SECRET, algorithm="HS256")

    assert (
        reason_of(TokenVerifier(settings, audience=AUDIENCE), token)
        == f"token lacks the {claim!r} claim"
    )


def test_unsigned_token_is_refused(settings: AuthSettings) -> None:
    token = jwt.encode(claims(settings), "", algorithm="none")

    assert (
        reason_of(TokenVerifier(settings, audience=AUDIENCE), token)
        == "token signing algorithm not allowed"
    )


def test_garbage_is_refused(settings: AuthSettings) -> None:
    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), "not-a-jwt") == "malformed token"


def test_unknown_roles_are_ignored(settings: AuthSettings) -> None:
    payload = claims(settings, roles=["chef", "sommelier", "pizzaiolo-in-chief", "analyst"])
    token = jwt.encode(payload, SECRET, algorithm="HS256")

    principal = TokenVerifier(settings, audience=AUDIENCE).verify(token)

    assert principal.roles == frozenset({Role.CHEF, Role.ANALYST})
    assert principal.claims["roles"] == payload["roles"]


def test_token_without_roles_has_none(settings: AuthSettings) -> None:
    payload = claims(settings)
    del payload["roles"]
    token = jwt.encode(payload, SECRET, algorithm="HS256")

    assert TokenVerifier(settings, audience=AUDIENCE).verify(token).roles == frozenset()


def test_roles_claim_that_is_not_a_list_is_refused(settings: AuthSettings) -> None:
    token = jwt.encode(claims(settings, roles="manager"), SECRET, algorithm="HS256")

    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), token) == (
        "token's 'roles' claim is not a list of role names"
    )


@pytest.mark.parametrize(
    ("subject", "ttl", "message"),
    [("", 60, "subject must not be empty"), ("x", 0, "ttl_seconds must be positive")],
)
def test_mint_token_refuses_nonsense(
    settings: AuthSettings, subject: str, ttl: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mint_token(settings, subject, [Role.CHEF], ttl_seconds=ttl)


# ------------------------------------------------------------------------------- settings


def test_settings_fail_closed_without_a_secret() -> None:
    # Unset, the environment is production, where the published development secret is refused.
    with pytest.raises(ValidationError, match="AUTH_JWT_SECRET is the development default"):
        AuthSettings()


def test_development_settings_default_to_the_development_secret() -> None:
    settings = AuthSettings(environment="development")

    assert settings.jwt_secret.get_secret_value() == DEVELOPMENT_SECRET
    assert (settings.issuer, settings.jwks_url) == ("mariospizzeria", None)
    assert DEVELOPMENT_SECRET not in repr(settings)


def test_settings_refuse_a_plain_http_jwks_url_outside_development() -> None:
    with pytest.raises(ValidationError, match="AUTH_JWKS_URL must be an https:// URL"):
        AuthSettings(environment="production", jwks_url="http://id.example/jwks")


def test_a_token_for_another_service_is_refused(settings: AuthSettings) -> None:
    token = mint_token(settings, "chef", [Role.CHEF], audiences=[audience_of("kitchen")])

    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), token) == (
        "token is not for this audience"
    )
    kitchen = TokenVerifier(settings, audience=audience_of("kitchen"))
    assert kitchen.verify(token).subject == "chef"


def test_a_staff_token_is_for_every_service_by_default(settings: AuthSettings) -> None:
    token = mint_token(settings, "manager", [Role.MANAGER])

    for audience in EVERY_SERVICE:
        assert TokenVerifier(settings, audience=audience).verify(token).subject == "manager"


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    settings = AuthSettings(jwt_secret=SECRET, max_token_lifetime_seconds=3600)
    now = int(time.time())
    token = jwt.encode(claims(settings, iat=now, exp=now + 7200), SECRET, algorithm="HS256")

    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), token) == (
        "token lives longer than the 3600 s allowed"
    )
    with pytest.raises(ValueError, match="longer than AUTH_MAX_TOKEN_LIFETIME_SECONDS"):
        mint_token(settings, "x", [Role.CHEF], ttl_seconds=3601)


def test_a_token_issued_in_the_future_is_refused(settings: AuthSettings) -> None:
    now = int(time.time())
    token = jwt.encode(claims(settings, iat=now + 600, exp=now + 900), SECRET, algorithm="HS256")

    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), token) in (
        "token is issued in the future",
        "token is not valid yet",  # PyJWT's own iat check, where it makes one
    )


def test_settings_refuse_the_development_secret_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="AUTH_JWT_SECRET is the development default"):
        AuthSettings()


def test_settings_refuse_a_short_secret_outside_development() -> None:
    with pytest.raises(ValidationError, match="HS256 needs at least 32"):
        AuthSettings(jwt_secret="too-short", environment="staging")


def test_settings_accept_a_strong_secret_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTH_ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("AUTH_ISSUER", "https://id.mariospizzeria.example")

    settings = AuthSettings()

    assert settings.jwt_secret.get_secret_value() == SECRET
    assert settings.issuer == "https://id.mariospizzeria.example"


def test_settings_need_no_secret_in_jwks_mode_outside_development() -> None:
    # The secret is unused when an identity provider's keys verify the tokens.
    settings = AuthSettings(environment="production", jwks_url="https://id.example/jwks")

    assert settings.uses_jwks


# ------------------------------------------------------------------------------------ JWKS


@dataclass
class JwksServer:
    url: str
    document: dict[str, Any]
    requests: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: Any


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, SigningKey]:
    return {
        "RS256": SigningKey(
            "rsa-1", "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "ES256": SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
    }


@pytest.fixture
def jwks_server(signing_keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    """The identity provider's JWKS endpoint: public keys only, served over real HTTP."""
    keys = []
    for key in signing_keys.values():
        algorithm = RSAAlgorithm if key.algorithm == "RS256" else ECAlgorithm
        jwk = algorithm.to_jwk(key.private_key.public_key(), as_dict=True)
        keys.append({**jwk, "kid": key.kid, "use": "sig", "alg": key.algorithm})
    state = JwksServer(url="", document={"keys": keys})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path != "/.well-known/jwks.json":
                self.send_error(404)
                return
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="jwks-server", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def idp_token(key: SigningKey, settings: AuthSettings, **overrides: Any) -> str:
    return jwt.encode(
        claims(settings, **overrides),
        key.private_key,
        algorithm=key.algorithm,
        headers={"kid": key.kid},
    )


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_jwks_mode_verifies_tokens_signed_by_the_identity_provider(
    jwks_server: JwksServer, signing_keys: dict[str, SigningKey], algorithm: str
) -> None:
    settings = AuthSettings(environment="development", jwks_url=jwks_server.url)
    verifier = TokenVerifier(settings, audience=AUDIENCE)
    token = idp_token(signing_keys[algorithm], settings, sub="driver-7", roles=["driver"])

    principal = verifier.verify(token)

    assert principal == Principal(subject="driver-7", roles=frozenset({Role.DRIVER}))
    assert jwks_server.requests == ["/.well-known/jwks.json"]


def test_jwks_mode_caches_the_key_set(
    jwks_server: JwksServer, signing_keys: dict[str, SigningKey]
) -> None:
    settings = AuthSettings(environment="development", jwks_url=jwks_server.url)
    verifier = TokenVerifier(settings, audience=AUDIENCE)

    for key in (*signing_keys.values(), *signing_keys.values()):
        assert verifier.verify(idp_token(key, settings)).subject == "cust-42"

    assert len(jwks_server.requests) == 1


def test_jwks_mode_still_checks_the_claims(
    jwks_server: JwksServer, signing_keys: dict[str, SigningKey]
) -> None:
    settings = AuthSettings(environment="development", jwks_url=jwks_server.url)
    verifier = TokenVerifier(settings, audience=AUDIENCE)
    key = signing_keys["RS256"]
    now = int(time.time())

    assert reason_of(verifier, idp_token(key, settings, exp=now - 60)) == "token expired"
    assert reason_of(verifier, idp_token(key, settings, aud="other")) == (
        "token is not for this audience"
    )


def test_jwks_mode_refuses_a_key_the_issuer_did_not_publish(jwks_server: JwksServer) -> None:
    settings = AuthSettings(environment="development", jwks_url=jwks_server.url)
    stranger = SigningKey("rsa-1", "RS256", rsa.generate_private_key(65537, 2048))

    # Same kid as a published key, different private key: the signature check must fail.
    assert reason_of(TokenVerifier(settings, audience=AUDIENCE), idp_token(stranger, settings)) == (
        "invalid token signature"
    )
    unknown_kid = SigningKey("rsa-unknown", "RS256", stranger.private_key)
    assert reason_of(
        TokenVerifier(settings, audience=AUDIENCE), idp_token(unknown_kid, settings)
    ) == ("no signing key of the issuer matches the token")


def test_jwks_mode_refuses_secret_signed_tokens(jwks_server: JwksServer) -> None:
    # An HS256 token signed with the (public) development secret must not pass in JWKS mode.
    settings = AuthSettings(environment="development", jwks_url=jwks_server.url)
    token = jwt.encode(
        claims(settings), DEVELOPMENT_SECRET, algorithm="HS256", headers={"kid": "rsa-1"}
    )

    assert (
        reason_of(TokenVerifier(settings, audience=AUDIENCE), token)
        == "token signing algorithm not allowed"
    )


def test_jwks_mode_reports_an_unreachable_issuer(signing_keys: dict[str, SigningKey]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = AuthSettings(
        environment="development", jwks_url=f"http://127.0.0.1:{port}/jwks.json"
    )
    verifier = TokenVerifier(settings, audience=AUDIENCE, jwks_timeout_seconds=2)

    with pytest.raises(SigningKeysUnavailableError):
        verifier.verify(idp_token(signing_keys["RS256"], settings))


def test_jwks_mode_cannot_mint(jwks_server: JwksServer) -> None:
    with pytest.raises(ValueError, match="cannot mint tokens when AUTH_JWKS_URL is set"):
        mint_token(
            AuthSettings(environment="development", jwks_url=jwks_server.url),
            "someone",
            [Role.MANAGER],
        )


# --------------------------------------------------------------------------------- FastAPI


@pytest.fixture
def client(settings: AuthSettings) -> TestClient:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(settings, audience=AUDIENCE)

    @app.get("/kitchen")
    def kitchen(
        principal: Annotated[Principal, Depends(require_roles(Role.CHEF, Role.MANAGER))],
    ) -> dict[str, Any]:
        return {"subject": principal.subject, "roles": sorted(principal.roles)}

    @app.get("/anyone")
    def anyone(principal: Annotated[Principal, Depends(require_roles())]) -> dict[str, str]:
        return {"subject": principal.subject}

    @app.get("/menu")
    def menu(
        principal: Annotated[Principal | None, Depends(optional_principal)],
    ) -> dict[str, str | None]:
        return {"subject": principal.subject if principal else None}

    return TestClient(app)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_api_answers_401_without_a_token(client: TestClient) -> None:
    response = client.get("/kitchen")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "missing bearer token"}


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer garbage", "malformed token"),
        ("Bearer a.b.c", "malformed token"),
        ("Basic Zm9vOmJhcg==", "missing bearer token"),
    ],
)
def test_api_answers_401_with_a_bad_token(client: TestClient, header: str, detail: str) -> None:
    response = client.get("/kitchen", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": detail}


def test_api_answers_401_with_an_expired_token(client: TestClient, settings: AuthSettings) -> None:
    now = int(time.time())
    token = jwt.encode(claims(settings, iat=now - 600, exp=now - 60), SECRET, algorithm="HS256")

    response = client.get("/kitchen", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "token expired"}


def test_api_answers_403_with_the_wrong_role(client: TestClient, settings: AuthSettings) -> None:
    token = mint_token(settings, "cust-42", [Role.CUSTOMER, Role.DRIVER])

    response = client.get("/kitchen", headers=bearer(token))

    assert response.status_code == 403
    assert response.json() == {"detail": "requires one of the roles: chef, manager"}


@pytest.mark.parametrize("role", [Role.CHEF, Role.MANAGER])
def test_api_answers_200_with_a_required_role(
    client: TestClient, settings: AuthSettings, role: Role
) -> None:
    token = mint_token(settings, "staff-1", [role, Role.ANALYST])

    response = client.get("/kitchen", headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {"subject": "staff-1", "roles": sorted([role.value, "analyst"])}


def test_require_roles_without_roles_admits_any_authenticated_caller(
    client: TestClient, settings: AuthSettings
) -> None:
    token = mint_token(settings, "nobody-special", [])

    assert client.get("/anyone", headers=bearer(token)).json() == {"subject": "nobody-special"}
    assert client.get("/anyone").status_code == 401


def test_optional_principal(client: TestClient, settings: AuthSettings) -> None:
    token = mint_token(settings, "cust-42", [Role.CUSTOMER])

    anonymous = client.get("/menu")
    known = client.get("/menu", headers=bearer(token))
    bad = client.get("/menu", headers=bearer("garbage"))
    not_bearer = client.get("/menu", headers={"Authorization": "Basic Zm9vOmJhcg=="})

    assert (anonymous.status_code, anonymous.json()) == (200, {"subject": None})
    assert (known.status_code, known.json()) == (200, {"subject": "cust-42"})
    assert (bad.status_code, bad.json()) == (401, {"detail": "malformed token"})
    assert bad.headers["WWW-Authenticate"] == "Bearer"
    assert not_bearer.status_code == 401
    assert not_bearer.json() == {"detail": "the Authorization header is not a bearer token"}


def test_api_answers_503_when_the_issuer_keys_are_unavailable(
    signing_keys: dict[str, SigningKey],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = AuthSettings(
        environment="development", jwks_url=f"http://127.0.0.1:{port}/jwks.json"
    )
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(settings, audience=AUDIENCE, jwks_timeout_seconds=2)

    @app.get("/kitchen")
    def kitchen(_: Annotated[Principal, Depends(require_roles(Role.CHEF))]) -> None:
        return None

    token = idp_token(signing_keys["RS256"], settings, roles=["chef"])
    response = TestClient(app).get("/kitchen", headers=bearer(token))

    assert response.status_code == 503
    assert response.json() == {"detail": "the issuer's signing keys are unavailable"}


def test_api_without_a_verifier_on_app_state_is_a_wiring_error(settings: AuthSettings) -> None:
    app = FastAPI()

    @app.get("/kitchen")
    def kitchen(_: Annotated[Principal, Depends(require_roles(Role.CHEF))]) -> None:
        return None

    token = mint_token(settings, "chef-mario", [Role.CHEF])
    with pytest.raises(RuntimeError, match=r"app\.state\.token_verifier is not set"):
        TestClient(app).get("/kitchen", headers=bearer(token))


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/kitchen"]["get"]["security"] == [{"bearerAuth": []}]


# ------------------------------------------------------------------------------------- CLI


def test_cli_mint_token_prints_a_token_that_verifies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("AUTH_ISSUER", "https://id.mariospizzeria.example")

    argv = ["auth", "mint-token", "--subject", "mario", "--role", "chef", "--role", "manager"]
    code = cli.main([*argv, "--ttl", "900"])
    out, err = capsys.readouterr()

    assert code == 0
    assert err == ""
    token = out.strip()
    assert out == token + "\n"
    principal = TokenVerifier(AuthSettings(), audience=AUDIENCE).verify(token)
    assert principal.subject == "mario"
    assert principal.roles == frozenset({Role.CHEF, Role.MANAGER})
    assert principal.claims["iss"] == "https://id.mariospizzeria.example"
    assert principal.claims["exp"] - principal.claims["iat"] == 900
    with pytest.raises(AuthenticationError):
        TokenVerifier(AuthSettings(jwt_secret=OTHER_SECRET), audience=AUDIENCE).verify(token)


def test_cli_mint_token_warns_about_the_development_secret_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_ENVIRONMENT", "development")
    assert cli.main(["auth", "mint-token", "--subject", "dev", "--role", "customer"]) == 0
    out, err = capsys.readouterr()

    assert "development secret" in err
    assert TokenVerifier(AuthSettings(), audience=AUDIENCE).verify(out.strip()).roles == frozenset(
        {Role.CUSTOMER}
    )


def test_cli_mint_token_names_the_audiences_asked_for(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    argv = ["auth", "mint-token", "--subject", "ada", "--role", "chef", "--audience", "kitchen"]

    assert cli.main(argv) == 0
    token = capsys.readouterr().out.strip()

    assert jwt.decode(token, options={"verify_signature": False})["aud"] == [audience_of("kitchen")]


def test_cli_mint_token_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["auth", "mint-token", "--subject", "x", "--role", "sommelier"])

    assert exited.value.code == 2
    assert "invalid choice: 'sommelier'" in capsys.readouterr().err


def test_cli_mint_token_refuses_in_jwks_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWKS_URL", "https://id.example/jwks.json")

    with pytest.raises(SystemExit, match="cannot mint tokens when AUTH_JWKS_URL is set"):
        cli.main(["auth", "mint-token", "--subject", "x", "--role", "chef"])


def test_cli_mint_token_refuses_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ENVIRONMENT", "production")

    with pytest.raises(SystemExit, match="AUTH_JWT_SECRET is the development default"):
        cli.main(["auth", "mint-token", "--subject", "x", "--role", "chef"])
