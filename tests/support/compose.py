"""docker-compose.yml as compose reads it, with the secrets ``deploy/compose/secrets.sh`` makes:
the services, their commands and environments, and the nodes of its Kafka cluster. For the
checks of the file (tests/unit/test_compose.py) and the run of its brokers without Docker
(tests/integration/test_compose_cluster.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS_SH = ROOT / "deploy" / "compose" / "secrets.sh"
COMPOSE_BROKER = ROOT / "deploy" / "kafka" / "compose-broker.sh"
KAFKA_TEMPLATE = ROOT / "deploy" / "kafka" / "server.properties.template"

COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# What `bash deploy/compose/secrets.sh > .env` gives compose to interpolate.
DOT_ENV: dict[str, str] = dict(
    line.split("=", 1)
    for line in subprocess.run(
        ["bash", str(SECRETS_SH)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    if line and not line.startswith("#")
)
_VARIABLE = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")

BROKER_ENTRYPOINT = ["/opt/pizzeria/compose-broker.sh"]
# The nodes of the Kafka cluster: every service that runs the broker script.
BROKERS = sorted(name for name in SERVICES if SERVICES[name].get("entrypoint") == BROKER_ENTRYPOINT)


def interpolate(value: str) -> str:
    """``${NAME:?message}`` as compose fills it in from .env (every variable here is required)."""
    return _VARIABLE.sub(lambda match: DOT_ENV[match.group(1)], value)


def environment_of(name: str) -> dict[str, str]:
    environment = SERVICES[name].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: interpolate(str(value)) for key, value in environment.items()}


def command_of(name: str) -> list[str]:
    command = SERVICES[name].get("command")
    assert isinstance(command, list), f"{name}: give command in exec (list) form"
    assert command, f"{name}: give a command"
    return [str(part) for part in command]
