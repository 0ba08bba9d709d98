"""docker-compose.yml, the image build and the Postgres init script, checked against the code.

No Docker engine is needed: nothing here builds an image or starts a container. The compose file
is parsed, and every name, command, port, database and version in it is compared with what it
must agree with: the services' settings classes and CLIs (run for real up to the point where they
would start working), the init SQL, deploy/kafka/pom.xml and the local broker's configuration
(three nodes of one cluster, replicated as the local stack's cluster is), the Dockerfile and
.dockerignore. So renaming a setting, a command, a port or a database in the code without the
compose file (or the other way round) fails here, not in a container.
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
from sqlalchemy.engine import make_url

import contracts.access
import eventing.admin
from tests.support.compose import (
    BROKERS,
    COMPOSE,
    COMPOSE_BROKER,
    COMPOSE_FILE,
    DOT_ENV,
    KAFKA_TEMPLATE,
    ROOT,
    SECRETS_SH,
    SERVICES,
    command_of,
    environment_of,
)
from tests.support.deployment import (
    EXPECTED_PROCESSES,
    HTTP_PORTS,
    MIN_INSYNC_REPLICAS,
    RELAY_METRICS_PORTS,
    REPLICATION_FACTOR,
    SETTINGS,
    SHARED_KAFKA_VARIABLE,
    console_script,
    env_names,
    start_service_cli,
    use_environment,
)

INIT_SQL = ROOT / "deploy" / "postgres" / "init-databases.sh"
KAFKA_POM = ROOT / "deploy" / "kafka" / "pom.xml"
STACK_SH = ROOT / "deploy" / "local" / "stack.sh"
DOCKERIGNORE = ROOT / ".dockerignore"

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
    SHARED_KAFKA_VARIABLE: "kafka-1:9092,kafka-2:9092,kafka-3:9092",
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
    for broker in BROKERS:
        assert environment_of(broker)["KAFKA_PRINCIPALS"].split() == expected
        for principal in ("controller", *expected):
            assert f"KAFKA_PASSWORD_{principal.upper().replace('-', '_')}" in environment_of(broker)
    assert len(DOT_ENV["AUTH_JWT_SECRET"]) >= 32
    assert len(set(DOT_ENV.values())) == len(DOT_ENV), "no secret is used twice"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_every_published_port_listens_on_loopback_only() -> None:
    published = {name: published_hosts(name) for name in SERVICES if SERVICES[name].get("ports")}
    assert published
    assert all(hosts == {"127.0.0.1"} for hosts in published.values()), published


def test_the_topics_step_runs_the_pizzeria_cli_against_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "topics"
    assert script_of(name) == "pizzeria"
    assert command_of(name)[:2] == ["topics", "ensure"]
    assert environment_of(name) == ADMIN_ENVIRONMENT
    assert service_of(name) in SETTINGS, "the image must be one that has the pizzeria CLI"

    asked: list[tuple[str, Any, Any]] = []

    async def ensure_topics(bootstrap_servers: str, *_: Any, **options: Any) -> list[str]:
        asked.append(
            (
                bootstrap_servers,
                options.get("replication_factor"),
                options.get("min_insync_replicas"),
            )
        )
        return []

    monkeypatch.setattr(eventing.admin, "ensure_topics", ensure_topics)
    use_environment(monkeypatch, environment_of(name))
    # asyncio.run in a thread of its own, apart from any event loop of the test session.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(console_script("pizzeria"), command_of(name)).result() == 0
    # The CLI as the command runs it makes the topics with the cluster's copies.
    assert asked == [
        (environment_of(name)[SHARED_KAFKA_VARIABLE], REPLICATION_FACTOR, MIN_INSYNC_REPLICAS)
    ]


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


def test_kafka_is_a_cluster_of_three_nodes_of_the_local_brokers_version() -> None:
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = (
        ET.parse(KAFKA_POM).getroot().findtext("m:properties/m:kafka.version", None, namespace)
    )
    assert version
    assert BROKERS == ["kafka-1", "kafka-2", "kafka-3"]
    # A copy of each partition on every broker: no fewer brokers than copies, and no broker idle.
    assert len(BROKERS) == REPLICATION_FACTOR
    for name in BROKERS:
        assert SERVICES[name]["image"] == f"apache/kafka:{version}"
    assert "kafka" not in SERVICES, "no single broker beside the cluster"


# The variables that make a broker one node of the cluster; all its others are the cluster's.
NODE_VARIABLES = {"KAFKA_NODE_ID", "KAFKA_ADVERTISED_HOST"}


def render_broker(tmp_path: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """deploy/kafka/compose-broker.sh --render-only, in ``environment`` and no other KAFKA_*."""
    target = tmp_path / "server.properties"
    target.unlink(missing_ok=True)
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("KAFKA_")}
    return subprocess.run(
        ["bash", str(COMPOSE_BROKER), "--render-only", str(target)],
        env={**inherited, **environment, "KAFKA_TEMPLATE": str(KAFKA_TEMPLATE)},
        capture_output=True,
        text=True,
    )


def rendered_broker_configuration(
    tmp_path: Path, name: str, environment: dict[str, str] | None = None
) -> dict[str, str]:
    """The server.properties deploy/kafka/compose-broker.sh renders in broker ``name``'s
    container (or with ``environment`` instead of that container's)."""
    result = render_broker(tmp_path, environment_of(name) if environment is None else environment)
    assert result.returncode == 0, result.stderr
    properties = {}
    for line in (tmp_path / "server.properties").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            properties[key.strip()] = value.strip()
    return properties


def mounts_of(name: str) -> dict[str, str]:
    """container path -> volume or host path."""
    volumes = SERVICES[name].get("volumes", [])
    return {target: source for source, target, *_ in (v.split(":") for v in volumes)}


@pytest.mark.parametrize("name", BROKERS)
def test_each_broker_runs_the_local_brokers_configuration_on_a_volume_of_its_own(
    tmp_path: Path, name: str
) -> None:
    mounts = mounts_of(name)
    assert (ROOT / mounts["/opt/pizzeria/compose-broker.sh"]).resolve() == COMPOSE_BROKER
    template = mounts["/opt/pizzeria/server.properties.template"]
    assert (ROOT / template).resolve() == KAFKA_TEMPLATE
    properties = rendered_broker_configuration(tmp_path, name)

    assert not [v for v in properties.values() if re.search("@[A-Z_]+@", v)], "every placeholder"
    assert properties["process.roles"] == "broker,controller"
    assert properties["auto.create.topics.enable"] == "false"
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["super.users"] == "User:admin;User:controller"
    assert (
        DOT_ENV["KAFKA_PASSWORD_ADMIN"]
        in properties["listener.name.broker.scram-sha-512.sasl.jaas.config"]
    )
    # The log directory is a persistent volume, this node's alone.
    assert mounts[properties["log.dirs"]] == f"{name}-data"
    assert f"{name}-data" in COMPOSE["volumes"]
    others = {mounts_of(other).get(properties["log.dirs"]) for other in SERVICES if other != name}
    assert f"{name}-data" not in others


def quorum_voters(value: str) -> dict[int, tuple[str, int]]:
    """'1@kafka-1:9093,2@kafka-2:9093' -> {node id: (host, port)}."""
    voters = {}
    for voter in value.split(","):
        node, address = voter.split("@", 1)
        host, port = address.rsplit(":", 1)
        assert int(node) not in voters, f"voter {node} twice in {value}"
        voters[int(node)] = (host, int(port))
    return voters


def test_the_brokers_are_one_cluster_with_a_static_quorum_of_all_three(tmp_path: Path) -> None:
    rendered = {name: rendered_broker_configuration(tmp_path, name) for name in BROKERS}
    ids = {name: int(properties["node.id"]) for name, properties in rendered.items()}
    assert len(set(ids.values())) == len(BROKERS), f"a node id each: {ids}"
    # kafka-N is node N, so that a node id in Kafka's logs and tools names its container.
    assert all(name == f"kafka-{node}" for name, node in ids.items()), ids

    # The same voters on every node, and every node among them at its own controller listener
    # (a static quorum: nothing to bootstrap from, no controller added later).
    (voters,) = {properties["controller.quorum.voters"] for properties in rendered.values()}
    expected = {}
    for name, properties in rendered.items():
        assert "controller.quorum.bootstrap.servers" not in properties, name
        _, port = listeners(properties["listeners"])[properties["controller.listener.names"]]
        expected[ids[name]] = (SERVICES[name]["hostname"], port)
    assert quorum_voters(voters) == expected

    # One cluster: besides its id and name, every node has the same environment, so the same
    # cluster id (the script's, as none is given), SCRAM users and passwords.
    shared = [
        {key: value for key, value in environment_of(name).items() if key not in NODE_VARIABLES}
        for name in BROKERS
    ]
    assert all(environment == shared[0] for environment in shared)
    assert set(environment_of(BROKERS[0])) >= NODE_VARIABLES


def stack_cluster_branch() -> str:
    """The part of deploy/local/stack.sh's render_kafka_config that makes a node of a cluster."""
    text = STACK_SH.read_text()
    function = text[text.index("render_kafka_config() {") :]
    branch = function[function.index('if [ "$KAFKA_BROKERS" -gt 1 ]; then') :]
    return branch[: branch.index("\n    fi\n")]


def stack_replication_settings() -> dict[str, str]:
    """The copies stack.sh's cluster sets, with its replication factor and min.insync.replicas
    as the deployment's."""
    values = {
        "KAFKA_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
        "KAFKA_MIN_INSYNC": str(MIN_INSYNC_REPLICAS),
    }
    found = re.findall(r"\^\\\(([\w.]+)\\\)=\.\*\|\\1=\$(\w+)\|", stack_cluster_branch())
    return {key: values[variable] for key, variable in found}


def stack_cluster_additions() -> dict[str, str]:
    """The settings stack.sh's cluster adds to the template's."""
    return dict(re.findall(r'echo "([\w.]+)=(\w+)" >>"\$config"', stack_cluster_branch()))


def test_the_cluster_replicates_as_the_local_stacks_cluster_does(tmp_path: Path) -> None:
    stack = stack_replication_settings() | stack_cluster_additions()
    # The internal topics' copies too: consumer offsets and transactions survive a broker.
    assert {
        "default.replication.factor",
        "min.insync.replicas",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    } <= set(stack), "stack.sh's cluster branch is not where this test looks"
    assert stack["min.insync.replicas"] == str(MIN_INSYNC_REPLICAS)
    for name in BROKERS:
        properties = rendered_broker_configuration(tmp_path, name)
        assert {key: properties.get(key) for key in stack} == stack, name


@pytest.mark.parametrize("name", BROKERS)
def test_each_brokers_listeners_authenticate_and_agree_with_its_name(
    tmp_path: Path, name: str
) -> None:
    properties = rendered_broker_configuration(tmp_path, name)
    own = listeners(properties["listeners"])
    advertised = listeners(properties["advertised.listeners"])
    protocols = dict(
        item.split(":") for item in properties["listener.security.protocol.map"].split(",")
    )
    assert set(own) == set(protocols)
    # Every listener authenticates. The clients' one is advertised under the node's own name on
    # the network, and the brokers replicate over it, as admin with SCRAM.
    assert set(protocols.values()) <= {"SASL_PLAINTEXT", "SASL_SSL"}
    assert SERVICES[name]["hostname"] == name
    assert advertised == {"BROKER": (name, 9092)}
    assert own["BROKER"] == ("0.0.0.0", 9092)
    assert properties["inter.broker.listener.name"] == "BROKER"
    assert properties["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    # The other voters connect to the controller listener, so it listens on the network; it is
    # never advertised to clients, never published, and takes the controller's password only.
    controller = properties["controller.listener.names"]
    assert own[controller] == ("0.0.0.0", 9093)
    assert controller not in advertised
    assert properties[f"listener.name.{controller.lower()}.sasl.enabled.mechanisms"] == "PLAIN"
    assert (
        f'user_controller="{DOT_ENV["KAFKA_PASSWORD_CONTROLLER"]}";'
        in properties[f"listener.name.{controller.lower()}.plain.sasl.jaas.config"]
    )
    assert "ports" not in SERVICES[name], "Kafka is not published on the host"


@pytest.mark.parametrize("name", BROKERS)
def test_each_broker_is_health_checked_on_its_client_listener(tmp_path: Path, name: str) -> None:
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    probe = re.fullmatch(r"bash -c 'exec 3<>/dev/tcp/127\.0\.0\.1/(\d+)'", test[1])
    assert probe is not None, f"{name}: {test}"
    # A node opens its client listener only once the quorum has unfenced it, so three healthy
    # nodes are three brokers the topics step can place copies on.
    _, port = listeners(rendered_broker_configuration(tmp_path, name)["listeners"])["BROKER"]
    assert int(probe.group(1)) == port


def test_every_kafka_client_names_every_broker(tmp_path: Path) -> None:
    advertised = set()
    for name in BROKERS:
        properties = rendered_broker_configuration(tmp_path, name)
        host, port = listeners(properties["advertised.listeners"])["BROKER"]
        advertised.add(f"{host}:{port}")
    clients = {
        name: environment_of(name)[SHARED_KAFKA_VARIABLE]
        for name in SERVICES
        if SHARED_KAFKA_VARIABLE in environment_of(name)
    }
    talking = {name for name, (_, command) in processes().items() if command != "migrate"}
    assert {"topics", "acls"} | talking <= set(clients)
    for name, bootstrap in clients.items():
        servers = bootstrap.split(",")
        assert len(servers) == len(set(servers)) and set(servers) == advertised, name


def test_the_broker_script_still_makes_a_single_node_without_voters(tmp_path: Path) -> None:
    environment = {
        key: value
        for key, value in environment_of(BROKERS[0]).items()
        if key not in NODE_VARIABLES | {"KAFKA_CONTROLLER_QUORUM_VOTERS"}
    }
    properties = rendered_broker_configuration(tmp_path, BROKERS[0], environment)
    assert properties["node.id"] == "1"
    assert "controller.quorum.voters" not in properties
    assert properties["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    own = listeners(properties["listeners"])
    assert own == {"BROKER": ("0.0.0.0", 9092), "CONTROLLER": ("127.0.0.1", 9093)}
    assert listeners(properties["advertised.listeners"]) == {"BROKER": ("kafka", 9092)}
    assert {properties[key] for key in stack_replication_settings()} == {"1"}
    assert not set(stack_cluster_additions()) & set(properties)


@pytest.mark.parametrize(
    "voters",
    [
        "1@kafka-1:9093,2@kafka-2:9093",  # node 3 is no voter
        "1@kafka-1:9093,3@kafka-2:9093,3@kafka-3:9093",  # two voters 3
        "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3",  # no port
    ],
)
def test_the_broker_script_refuses_voters_that_leave_its_node_out_of_a_quorum(
    tmp_path: Path, voters: str
) -> None:
    environment = {**environment_of("kafka-3"), "KAFKA_CONTROLLER_QUORUM_VOTERS": voters}
    result = render_broker(tmp_path, environment)
    assert result.returncode == 78, result
    assert result.stderr.startswith("compose-broker: ")
    assert not (tmp_path / "server.properties").exists()


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
            # After the whole cluster: a topic's three copies need three brokers.
            expected |= dict.fromkeys(BROKERS, HEALTHY_CONDITION)
            expected |= {
                "acls": ONE_SHOT_CONDITION,
                migrate_of[service]: ONE_SHOT_CONDITION,
            }
            assert SERVICES[name].get("restart") == "unless-stopped", name
        else:
            assert SERVICES[name].get("restart") == "no", name
        assert depends_on(name) == expected, name
    assert depends_on("topics") == dict.fromkeys(BROKERS, HEALTHY_CONDITION)
    for name in BROKERS:
        assert depends_on(name) == {}, "the nodes start side by side: a quorum needs two"
        assert SERVICES[name].get("restart") == "unless-stopped", name

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
