"""How every Kafka client of the system authenticates to the broker (``KAFKA_*`` settings).

The broker (deploy/local/stack.sh, docker-compose.yml) accepts SASL/SCRAM-SHA-512 only, and its
authorizer denies whatever no ACL allows (see eventing.acls). Each process has a
principal of its own and presents it with::

    KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT   # SASL_SSL in production, with KAFKA_SSL_CAFILE
    KAFKA_SASL_USERNAME=<principal>
    KAFKA_SASL_PASSWORD=...

The names carry no service prefix, like ``KAFKA_BOOTSTRAP_SERVERS``: one process, one principal.
``client_options()`` is what every aiokafka client of the code is built with (relay, consumers,
dead letters, tap, admin, health checks); a client built without it would be refused.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaSecurity", "SaslMechanism", "SecurityProtocol", "kafka_security"]

SecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaSecurity(BaseSettings):
    """A Kafka principal and how to reach the broker safely; read from ``KAFKA_*``."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore", frozen=True)

    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    # A SecretStr keeps the password out of reprs, logs and tracebacks.
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = Field(
        default=None,
        description="PEM file of the CA that signed the broker's certificate (SASL_SSL, SSL); "
        "unset: the system's trust store.",
    )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SASL_SSL", "SSL")

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> KafkaSecurity:
        if self.uses_sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME "
                "and KAFKA_SASL_PASSWORD"
            )
        return self

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        # Verifies the broker's certificate and host name (aiokafka's default context does).
        context: ssl.SSLContext = create_ssl_context(cafile=self.ssl_cafile)
        return context

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments that give an aiokafka client (producer, consumer, admin client,
        AIOKafkaClient) this principal and transport."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.uses_sasl:
            assert self.sasl_password is not None  # checked by the validator
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password.get_secret_value(),
            }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options


def kafka_security(security: KafkaSecurity | None) -> KafkaSecurity:
    """``security``, or the ``KAFKA_*`` environment's (tools and tests pass none)."""
    return security if security is not None else KafkaSecurity()
