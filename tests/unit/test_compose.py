"""docker-compose.yml, the image build and the Postgres init script, checked against the code.

No Docker engine is needed: nothing here builds an image or starts a container. The compose file
is parsed, and every name, command, port, database and version in it is compared with what it
must agree with: the services' settings classes and CLIs (run for real up to the point where they
would start working), the init SQL, deploy/kafka/pom.xml and the local broker's configuration,
the Dockerfile and .dockerignore. So renaming a setting, a command, a port or a database in the
code without the compose file (or the other way round) fails here, not in a container.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy.engine import make_url

import contracts.access
import eventing.admin
from tests.support.deployment import (
    EXPECTED_PROCESSES,
    HTTP_PORTS,
    RELAY_METRICS_PORTS,
    SETTINGS,
    SHARED_KAFKA_VARIABLE,
    console_script,
    env_names,
    start_service_cli,
    use_environment,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INIT_SQL = ROOT / "deploy" / "postgres" / "init-databases.sh"
SECRETS_SH = ROOT / "deploy" / "compose" / "secrets.sh"
COMPOSE_BROKER = ROOT / "deploy" / "kafka" / "compose-broker.sh"
KAFKA_POM = ROOT / "deploy" / "kafka" / "pom.xml"
KAFKA_TEMPLATE = ROOT / "deploy" / "kafka" / "server.properties.template"
STACK_SH = ROOT / "deploy" / "local" / "stack.sh"
DOCKERIGNORE = ROOT / ".dockerignore"

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

ONE_SHOT_CONDITION = "service_completed_successfully"
HEALTHY_CONDITION = "service_healthy"


# ------------------------------------------------------------------------------------ helpers
def service_of(name: str) -> str | None:
    """The workspace service whose image a compose service runs (its build arg SERVICE)."""
    build = SERVICES[name].get("build")
    return build["args"]["SERVICE"] if isinstance(build, dict) else None


def script_of(name: str) -> str:
    """The console script a compose service runs: the entrypoint override, else its service's."""
    entrypoint = SERVICES[name].get("entrypoint")
    if entrypoint is not None:
        assert isinstance(entrypoint, list), f"{name}: give entrypoint in exec (list) form"
        assert len(entrypoint) == 1, f"{name}: the entrypoint is one console script"
        return str(entrypoint[0])
    service = service_of(name)
    assert service is not None, f"{name} neither builds a service image nor names an entrypoint"
    return service


def command_of(name: str) -> list[str]:
    command = SERVICES[name].get("command")
    assert isinstance(command, list), f"{name}: give command in exec (list) form"
    assert command, f"{name}: give a command"
    return [str(part) for part in command]


def interpolate(value: str) -> str:
    """``${NAME:?message}`` as compose fills it in from .env (every variable here is required)."""
    return _VARIABLE.sub(lambda match: DOT_ENV[match.group(1)], value)


def environment_of(name: str) -> dict[str, str]:
    environment = SERVICES[name].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: interpolate(str(value)) for key, value in environment.items()}


def published_hosts(name: str) -> set[str]:
    """The host addresses the published ports listen on ("" for all interfaces)."""
    hosts = set()
    for entry in SERVICES[name].get("ports", []):
        parts = str(entry).split(":")
        hosts.add(parts[0] if len(parts) == 3 else "")
    return hosts


def published_ports(name: str) -> dict[int, int]:
    """container port -> host port."""
    ports: dict[int, int] = {}
    for entry in SERVICES[name].get("ports", []):
        if isinstance(entry, dict):
            ports[int(entry["target"])] = int(entry["published"])
        else:
            *host, container = str(entry).split(":")
            ports[int(container)] = int(host[-1]) if host else int(container)
    return ports


def depends_on(name: str) -> dict[str, str]:
    """dependency -> condition."""
    dependencies = SERVICES[name].get("depends_on", {})
    assert isinstance(dependencies, dict), f"{name}: depends_on needs conditions (long form)"
    return {target: spec["condition"] for target, spec in dependencies.items()}


def processes() -> dict[str, tuple[str, str]]:
    """compose service -> (service, command) for every process of the system's own code."""
    found = {}
    for name in SERVICES:
        service = service_of(name)
        if service is not None and "entrypoint" not in SERVICES[name]:
            command = command_of(name)
            assert len(command) == 1, f"{name}: one sub-command, e.g. serve"
            found[name] = (service, command[0])
    return found


def compose_service_for(service: str, command: str) -> str:
    matches = [name for name, process in processes().items() if process == (service, command)]
    assert len(matches) == 1, f"expected one `{service} {command}` in docker-compose.yml: {matches}"
    return matches[0]


def run_healthcheck(monkeypatch: pytest.MonkeyPatch, name: str) -> urllib.parse.SplitResult:
    """Run the service's health check command with urlopen recorded; returns the URL it opens."""
    healthcheck = SERVICES[name].get("healthcheck")
    assert healthcheck, f"{name} has no health check"
    test = healthcheck["test"]
    assert test[:3] == ["CMD", "python", "-c"], f"{name}: check with the image's python: {test}"
    assert len(test) == 4
    opened: list[str] = []

    def urlopen(url: str, timeout: float | None = None) -> None:
        assert timeout is not None, f"{name}: the health check needs a timeout"
        opened.append(url)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    exec(compile(test[3], f"<healthcheck of {name}>", "exec"), {"__name__": "__main__"})
    assert len(opened) == 1, f"{name}: the health check opens one URL, not {opened}"
    return urllib.parse.urlsplit(opened[0])


def init_sql_databases() -> set[str]:
    found = re.search(r'^DATABASES="(.*)"$', INIT_SQL.read_text(), re.MULTILINE)
    assert found is not None, f"{INIT_SQL.name} lists its DATABASES"
    return set(found.group(1).split())


def kafka_properties(environment: dict[str, str]) -> dict[str, str]:
    """The broker properties the apache/kafka image renders from KAFKA_* variables.

    KAFKA_FOO_BAR becomes foo.bar (``__`` stands for ``_`` and ``___`` for ``-``).
    """
    not_properties = {  # the image's own variables (ExcludeServerPropsEnv of its wrapper)
        "KAFKA_VERSION",
        "KAFKA_HEAP_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
        "KAFKA_JMX_HOSTNAME",
    }
    properties = {}
    for key, value in environment.items():
        if key.startswith("KAFKA_") and key not in not_properties:
            name = key.removeprefix("KAFKA_").lower()
            name = name.replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")
            properties[name] = value
    return properties


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'PLAINTEXT://host:9092,CONTROLLER://:9093' -> {name: (host, port)}."""
    parsed = {}
    for item in value.split(","):
        name, address = item.split("://", 1)
        host, port = address.rsplit(":", 1)
        parsed[name] = (host, int(port))
    return parsed


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (relative, with /) out of the build context.

    Docker's rules: patterns in order, the last one matching the path or one of its parent
    directories wins; ``!`` re-includes; ``*`` and ``?`` stay within a path segment, ``**``
    spans any number of them.
    """

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(f"^{out}$")

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = os.path.normpath(pattern.removeprefix("!").strip()).lstrip("/")
        if any(regex(pattern).match(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def build_dockerfile(name: str) -> Path:
    build = SERVICES[name]["build"]
    context = COMPOSE_FILE.parent / str(build.get("context", "."))
    return context / str(build.get("dockerfile", "Dockerfile"))


# ------------------------------------------------------------------------------------- tests
def test_compose_runs_every_process_of_the_system_once() -> None:
    assert sorted(processes().values()) == sorted(EXPECTED_PROCESSES)


@pytest.mark.parametrize("name", sorted(processes()))
def test_command_is_one_of_its_cli_and_reads_the_intended_settings(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    service, command = processes()[name]
    started = start_service_cli(monkeypatch, script_of(name), [command], environment_of(name))

    # The CLI reads the settings class whose variables the next test checks.
    assert started.settings_class is SETTINGS[service][0]
    if command == "relay":
        assert started.relay_class in SETTINGS[service]
        assert started.relay is not None
    config = started.settings
    assert config.kafka_bootstrap_servers == environment_of(name)[SHARED_KAFKA_VARIABLE]
    url = make_url(config.database_url)
    assert (url.host, url.database) == ("postgres", service)
    if command == "serve":
        assert config.http_host == "0.0.0.0"
        assert config.http_port == HTTP_PORTS[service]
    if command == "relay":
        assert started.relay is not None
        assert started.relay.metrics_host == "0.0.0.0"
        assert started.relay.metrics_port == RELAY_METRICS_PORTS[service]


@pytest.mark.parametrize("script", sorted(SETTINGS))
def test_the_cli_check_rejects_what_the_cli_rejects(
    monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    with pytest.raises(pytest.fail.Exception, match="is not a command"):
        start_service_cli(monkeypatch, script, ["bake"], {})
    if script not in RELAY_METRICS_PORTS:  # only producing services have an outbox relay
        with pytest.raises(pytest.fail.Exception, match="is not a command"):
            start_service_cli(monkeypatch, script, ["relay"], {})


@pytest.mark.parametrize("name", sorted(processes()))
def test_every_variable_is_a_setting_of_the_service(name: str) -> None:
    service, _ = processes()[name]
    accepted = set().union(*(env_names(settings) for settings in SETTINGS[service]))
    environment = environment_of(name)
    assert environment, f"{name} has no environment"
    assert set(environment) <= accepted, f"{name}: unknown to the settings classes"
    for settings in SETTINGS[service]:
        assert settings.model_config["env_prefix"].startswith(f"{service.upper()}_")
    # The one required setting, and the shared broker address.
    assert f"{service.upper()}_DATABASE_URL" in environment
    assert SHARED_KAFKA_VARIABLE in environment


ADMIN_ENVIRONMENT = {
    SHARED_KAFKA_VARIABLE: "kafka:9092",
    "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "admin",
    "KAFKA_SASL_PASSWORD": DOT_ENV["KAFKA_PASSWORD_ADMIN"],
}


def test_the_acls_step_runs_as_the_admin_after_the_topics() -> None:
    assert script_of("acls") == "pizzeria"
    assert command_of("acls") == ["access", "ensure"]
    assert environment_of("acls") == ADMIN_ENVIRONMENT
    assert depends_on("acls") == {"topics": ONE_SHOT_CONDITION}


@pytest.mark.parametrize("name", sorted(processes()))
def test_every_process_is_its_own_kafka_principal(name: str) -> None:
    service, command = processes()[name]
    if command == "migrate":
        return  # no Kafka
    environment = environment_of(name)
    principal = f"{service}-relay" if command == "relay" else service
    assert principal in contracts.access.PRINCIPAL_NAMES
    assert environment["KAFKA_SASL_USERNAME"] == principal
    variable = "KAFKA_PASSWORD_" + principal.upper().replace("-", "_")
    assert environment["KAFKA_SASL_PASSWORD"] == DOT_ENV[variable]
    assert environment["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert environment["AUTH_JWT_SECRET"] == DOT_ENV["AUTH_JWT_SECRET"]


def test_the_secrets_are_required_made_by_the_script_and_the_principals_agree() -> None:
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{(\w+)", text))
    assert used == set(re.findall(r"\$\{(\w+):\?", text)), "every variable is required"
    assert used <= set(DOT_ENV), "secrets.sh makes every variable compose requires"
    principals = re.search(r'^KAFKA_PRINCIPALS="(.*)"$', SECRETS_SH.read_text(), re.MULTILINE)
    assert principals is not None
    expected = list(contracts.access.PRINCIPAL_NAMES)
    assert principals.group(1).split() == expected
    assert environment_of("kafka")["KAFKA_PRINCIPALS"].split() == expected
    for principal in ("controller", *expected):
        assert f"KAFKA_PASSWORD_{principal.upper().replace('-', '_')}" in environment_of("kafka")
    assert len(DOT_ENV["AUTH_JWT_SECRET"]) >= 32
    assert len(set(DOT_ENV.values())) == len(DOT_ENV), "no secret is used twice"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_every_published_port_listens_on_loopback_only() -> None:
    published = {name: published_hosts(name) for name in SERVICES if SERVICES[name].get("ports")}
    assert published
    assert all(hosts == {"127.0.0.1"} for hosts in published.values()), published


def test_the_topics_step_runs_the_pizzeria_cli_against_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "topics"
    assert script_of(name) == "pizzeria"
    assert command_of(name) == ["topics", "ensure"]
    assert environment_of(name) == ADMIN_ENVIRONMENT
    assert service_of(name) in SETTINGS, "the image must be one that has the pizzeria CLI"

    asked: list[str] = []

    async def ensure_topics(bootstrap_servers: str, *_: Any, **__: Any) -> list[str]:
        asked.append(bootstrap_servers)
        return []

    monkeypatch.setattr(eventing.admin, "ensure_topics", ensure_topics)
    use_environment(monkeypatch, environment_of(name))
    # asyncio.run in a thread of its own, apart from any event loop of the test session.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(console_script("pizzeria"), command_of(name)).result() == 0
    assert asked == [environment_of(name)[SHARED_KAFKA_VARIABLE]]


@pytest.mark.parametrize("service", sorted(HTTP_PORTS))
def test_http_port_is_published_and_health_checked(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    name = compose_service_for(service, "serve")
    environment = environment_of(name)
    port = int(environment[f"{service.upper()}_HTTP_PORT"])
    assert port == HTTP_PORTS[service]
    assert environment[f"{service.upper()}_HTTP_HOST"] == "0.0.0.0"
    assert published_ports(name) == {port: port}
    url = run_healthcheck(monkeypatch, name)
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "127.0.0.1", port, "/readyz")


@pytest.mark.parametrize("service", sorted(RELAY_METRICS_PORTS))
def test_relay_endpoint_is_published_and_health_checked(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    name = compose_service_for(service, "relay")
    environment = environment_of(name)
    prefix = service.upper()
    port = int(environment[f"{prefix}_RELAY_METRICS_PORT"])
    assert port == RELAY_METRICS_PORTS[service]
    assert environment[f"{prefix}_RELAY_METRICS_HOST"] == "0.0.0.0"
    assert published_ports(name) == {port: port}
    url = run_healthcheck(monkeypatch, name)
    assert (url.scheme, url.hostname, url.port, url.path) == ("http", "127.0.0.1", port, "/readyz")


def test_every_database_url_names_a_database_the_init_script_creates() -> None:
    postgres = SERVICES["postgres"]
    assert postgres["image"] == "postgres:15"
    credentials = environment_of("postgres")
    created = init_sql_databases()
    urls = {
        (name, key): value
        for name in SERVICES
        for key, value in environment_of(name).items()
        if key.endswith("DATABASE_URL")
    }
    assert {service for service, _ in processes().values()} <= {
        key.removesuffix("_DATABASE_URL").lower() for _, key in urls
    }
    for (name, key), value in urls.items():
        url = make_url(value)
        assert url.drivername == "postgresql+asyncpg", (name, key)
        assert (url.host, url.port) == ("postgres", 5432), (name, key)
        # The service's own role (a relay uses its service's), never the administrator.
        assert url.username == url.database != credentials["POSTGRES_USER"]
        assert url.database is not None, (name, key)
        assert url.password == credentials[f"{url.database.upper()}_DB_PASSWORD"]
        assert url.database in created, f"{name}: {url.database} is not created by {INIT_SQL.name}"
        assert key == f"{url.database.upper()}_DATABASE_URL", "each service has its own database"


def test_the_init_script_is_mounted_and_creates_the_local_stacks_databases() -> None:
    mounts = {
        target: source
        for source, target, *_ in (volume.split(":") for volume in SERVICES["postgres"]["volumes"])
    }
    source = mounts["/docker-entrypoint-initdb.d/init-databases.sh"]
    assert (COMPOSE_FILE.parent / source).resolve() == INIT_SQL
    stack_databases = re.search(r"^DATABASES=\((.*)\)$", STACK_SH.read_text(), re.MULTILINE)
    assert stack_databases is not None
    assert init_sql_databases() == set(stack_databases.group(1).split()) == set(HTTP_PORTS)
    healthcheck = " ".join(SERVICES["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in healthcheck


def test_kafka_image_is_the_version_of_the_local_broker() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = (
        ET.parse(KAFKA_POM).getroot().findtext("m:properties/m:kafka.version", None, namespace)
    )
    assert version
    assert SERVICES["kafka"]["image"] == f"apache/kafka:{version}"


def rendered_broker_configuration(tmp_path: Path) -> dict[str, str]:
    """The server.properties deploy/kafka/compose-broker.sh renders in the container."""
    target = tmp_path / "server.properties"
    environment = environment_of("kafka")
    subprocess.run(
        ["bash", str(COMPOSE_BROKER), "--render-only", str(target)],
        check=True,
        env={**os.environ, **environment, "KAFKA_TEMPLATE": str(KAFKA_TEMPLATE)},
    )
    properties = {}
    for line in target.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            properties[key.strip()] = value.strip()
    return properties


def test_kafka_runs_the_local_brokers_configuration(tmp_path: Path) -> None:
    kafka = SERVICES["kafka"]
    assert kafka["entrypoint"] == ["/opt/pizzeria/compose-broker.sh"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in kafka["volumes"])}
    assert (ROOT / mounts["/opt/pizzeria/compose-broker.sh"]).resolve() == COMPOSE_BROKER
    template = mounts["/opt/pizzeria/server.properties.template"]
    assert (ROOT / template).resolve() == KAFKA_TEMPLATE
    properties = rendered_broker_configuration(tmp_path)

    assert not [value for value in properties.values() if "@" in value], "every placeholder"
    assert properties["process.roles"] == "broker,controller"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["super.users"] == "User:admin;User:controller"
    assert (
        DOT_ENV["KAFKA_PASSWORD_ADMIN"]
        in properties["listener.name.broker.scram-sha-512.sasl.jaas.config"]
    )
    # The log directory is the persistent volume.
    assert properties["log.dirs"] in mounts
    assert mounts[properties["log.dirs"]] == "kafka-data"


def test_kafka_listeners_agree_with_each_other_and_with_the_clients(tmp_path: Path) -> None:
    properties = rendered_broker_configuration(tmp_path)
    own = listeners(properties["listeners"])
    advertised = listeners(properties["advertised.listeners"])
    protocols = dict(
        item.split(":") for item in properties["listener.security.protocol.map"].split(",")
    )
    assert set(own) == set(protocols)
    # Every listener authenticates; the clients' one is advertised under the service's name.
    assert set(protocols.values()) <= {"SASL_PLAINTEXT", "SASL_SSL"}
    assert advertised == {"BROKER": ("kafka", 9092)}
    assert own["BROKER"] == ("0.0.0.0", 9092)
    controller = properties["controller.listener.names"]
    assert own[controller][0] == "127.0.0.1", "the controller listener stays in the container"
    assert SERVICES["kafka"]["hostname"] == "kafka"
    bootstrap = {
        value
        for name in SERVICES
        for key, value in environment_of(name).items()
        if key == SHARED_KAFKA_VARIABLE
    }
    assert bootstrap == {"kafka:9092"}


def test_start_up_order() -> None:
    for name in SERVICES:
        for target, condition in depends_on(name).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            assert condition in {HEALTHY_CONDITION, ONE_SHOT_CONDITION}, (name, target)
            if condition == HEALTHY_CONDITION:
                assert "healthcheck" in SERVICES[target], f"{target} can never be healthy"
            else:
                assert SERVICES[target].get("restart") == "no", f"{target} is not a one-shot"

    migrate_of = {service: compose_service_for(service, "migrate") for service in HTTP_PORTS}
    for name, (service, command) in processes().items():
        expected = {"postgres": HEALTHY_CONDITION}
        if command != "migrate":
            expected |= {
                "kafka": HEALTHY_CONDITION,
                "acls": ONE_SHOT_CONDITION,
                migrate_of[service]: ONE_SHOT_CONDITION,
            }
            assert SERVICES[name].get("restart") == "unless-stopped", name
        else:
            assert SERVICES[name].get("restart") == "no", name
        assert depends_on(name) == expected, name
    assert depends_on("topics") == {"kafka": HEALTHY_CONDITION}

    # No cycle: every service can be ordered after its dependencies.
    ordered: list[str] = []
    while len(ordered) < len(SERVICES):
        ready = [n for n in SERVICES if n not in ordered and set(depends_on(n)) <= set(ordered)]
        assert ready, f"cyclic depends_on among {set(SERVICES) - set(ordered)}"
        ordered.extend(ready)


@pytest.mark.parametrize("name", sorted(n for n in SERVICES if "build" in SERVICES[n]))
def test_every_build_uses_an_existing_dockerfile_for_a_workspace_service(name: str) -> None:
    dockerfile = build_dockerfile(name)
    assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    assert (COMPOSE_FILE.parent / SERVICES[name]["build"].get("context", ".")).resolve() == ROOT
    assert ("ARG", "SERVICE") in dockerfile_instructions(dockerfile)

    service = service_of(name)
    assert service is not None
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    assert project["project"]["name"] == f"mario-{service}"
    assert service in project["project"]["scripts"], f"mario-{service} has no `{service}` command"
    locked = {
        package["name"] for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    }
    assert f"mario-{service}" in locked


def test_dockerfile_builds_a_non_root_image_of_one_service_with_uv() -> None:
    dockerfiles = {build_dockerfile(name) for name in SERVICES if "build" in SERVICES[name]}
    assert len(dockerfiles) == 1, "one Dockerfile for every service, not copies of it"
    (dockerfile,) = dockerfiles
    instructions = dockerfile_instructions(dockerfile)
    text = " ".join(arguments for _, arguments in instructions)

    # Base image: python:3.11-slim, given once as a global ARG.
    global_args = {}
    for keyword, arguments in instructions:
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in arguments:
            key, value = arguments.split("=", 1)
            global_args[key] = value
    stages = [args.split() for keyword, args in instructions if keyword == "FROM"]
    assert len(stages) >= 2, "a multi-stage build"
    for stage in stages:
        assert re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], stage[0]) == (
            "python:3.11-slim"
        )
    assert "--from=ghcr.io/astral-sh/uv:" in text

    # Only this service and the shared packages, at the locked versions, without dev tools.
    syncs = [args for keyword, args in instructions if keyword == "RUN" and "uv sync" in args]
    assert syncs
    for sync in syncs:
        for flag in ("--frozen", "--no-dev", '--package "mario-${SERVICE}"'):
            assert flag in sync, f"uv sync without {flag}: {sync}"

    # The runtime stage: a non-root user, the service's CLI as entrypoint, `serve` by default.
    runtime = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    (entrypoint,) = [json.loads(args) for keyword, args in runtime if keyword == "ENTRYPOINT"]
    (cmd,) = [json.loads(args) for keyword, args in runtime if keyword == "CMD"]
    assert cmd == ["serve"]
    assert len(entrypoint) == 1
    # An exec-form ENTRYPOINT cannot expand SERVICE: it runs a fixed name linked to that script.
    assert re.search(rf'ln -s "\$\{{SERVICE\}}" \S*/{re.escape(entrypoint[0])}(\s|$)', text)


def test_dockerignore_sends_what_the_dockerfile_copies_and_nothing_local() -> None:
    (dockerfile,) = {build_dockerfile(name) for name in SERVICES if "build" in SERVICES[name]}
    copies = [
        args.split()[:-1]
        for keyword, args in dockerfile_instructions(dockerfile)
        if keyword == "COPY" and not args.startswith("--from")
    ]
    assert copies
    for service in HTTP_PORTS:
        for sources in copies:
            for source in sources:
                path = ROOT / source.replace("${SERVICE}", service)
                assert path.exists(), f"COPY {source}: {path} does not exist"
                files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                for file in files:
                    relative = file.relative_to(ROOT).as_posix()
                    cache = "__pycache__" in file.parts or file.suffix == ".pyc"
                    assert dockerignore_excludes(relative) == cache, relative
    for local in (".git/HEAD", ".venv/pyvenv.cfg", ".local/stack.env", "tests/conftest.py"):
        assert dockerignore_excludes(local), local
