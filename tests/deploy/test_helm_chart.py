"""The Helm chart (deploy/helm/pizzeria), rendered and checked offline, with its default values and
with values-production.yaml.

No cluster is needed. ``helm template`` (Helm built from the Go module proxy by ``make install``)
renders the chart; every object is validated against the Kubernetes API schemas of the oldest
and newest Kubernetes the chart supports (kubernetes-validate, strict: unknown fields fail), and
the Strimzi resources against Strimzi's own CRD schemas (tests/node). Then the chart is checked
against the code: each container runs a command its CLI has, with only variables its settings
read, and the settings it gets are accepted (a production pod would start); ports and probe
paths are the ones the processes serve; topics and ACLs are contracts.topics' and
contracts.access'; no consumer scales past its partitions; secrets come from Secrets only; and
the NetworkPolicies let each pod do what its settings say it does.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from kubernetes_validate import utils as kubernetes_schemas  # type: ignore[import-untyped]

import contracts.cli
from contracts.access import PRINCIPALS, every_grant
from contracts.topics import ALL_TOPICS, TOPOLOGY
from eventing.acls import Operation, PatternType, ResourceType
from eventing.health_server import serve_health
from eventing.kafka_security import KafkaSecurity
from service_kit.auth import AuthSettings
from service_kit.http import operations_router
from tests.support.deployment import (
    HTTP_PORTS,
    MIN_INSYNC_REPLICAS,
    RELAY_METRICS_PORTS,
    REPLICATION_FACTOR,
    SETTINGS,
    env_names,
    start_service_cli,
    use_environment,
)
from tests.support.infra import ROOT
from tests.support.processes import free_port

CHART = ROOT / "deploy" / "helm" / "pizzeria"
STACK_SH = ROOT / "deploy" / "local" / "stack.sh"
STRIMZI_VALIDATOR = ROOT / "tests" / "node" / "validate-strimzi.mjs"
VALUES = {"default": [], "production": ["--values", str(CHART / "values-production.yaml")]}
# The chart's kubeVersion floor, and the newest Kubernetes whose schemas are at hand.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_schemas.latest_version())
NAMESPACE = "pizzeria"


def helm_binary() -> Path:
    found = re.search(r"^HELM_VERSION=(\S+)$", STACK_SH.read_text(), re.MULTILINE)
    assert found is not None, "deploy/local/stack.sh pins HELM_VERSION"
    helm = ROOT / ".local" / f"helm-{found.group(1)}" / "helm"
    assert helm.exists(), f"{helm} is missing: `make install` builds it"
    return helm


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm_binary()), "template", "pizzeria", str(CHART), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
    )


def render(*args: str) -> list[dict[str, Any]]:
    rendered = helm_template(*args)
    assert rendered.returncode == 0, rendered.stderr
    return [document for document in yaml.safe_load_all(rendered.stdout) if document]


def chart_values(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    if name == "production":
        production = yaml.safe_load((CHART / "values-production.yaml").read_text())
        values["kafka"] = {**values["kafka"], **production["kafka"]}
    return values


@dataclass
class Rendered:
    name: str
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        [found] = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return found

    def workloads(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(object, pod template) of every Deployment and Job."""
        for kind in ("Deployment", "Job"):
            for workload in self.of_kind(kind):
                yield workload, workload["spec"]["template"]


@pytest.fixture(scope="module", params=sorted(VALUES))
def rendered(request: pytest.FixtureRequest) -> Rendered:
    return Rendered(request.param, render(*VALUES[request.param]))


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def component(workload: dict[str, Any]) -> str:
    return str(workload["metadata"]["labels"]["app.kubernetes.io/component"])


def service_of_image(container: dict[str, Any]) -> str:
    found = re.fullmatch(r".+/mario-([a-z]+):[^:]+", container["image"])
    assert found, f"{container['name']}: image {container['image']} is not a service's"
    return found.group(1)


def fake_secret(name: str, key: str) -> str:
    """What a Secret's key would hold: a database URL on the service's own role, else a secret
    long enough for every check."""
    if key == "url":
        service = name.rsplit("-", 1)[-1]
        return f"postgresql+asyncpg://{service}:{'p' * 24}@postgres.postgres.svc:5432/{service}"
    return f"{name}-{key}-" + "s" * 48


def environment(container: dict[str, Any]) -> dict[str, str]:
    resolved = {}
    for variable in container.get("env", []):
        if "value" in variable:
            resolved[variable["name"]] = str(variable["value"])
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            resolved[variable["name"]] = fake_secret(ref["name"], ref["key"])
    return resolved


def strimzi_errors(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    validated = subprocess.run(
        ["node", str(STRIMZI_VALIDATOR)],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
    )
    assert validated.stdout, validated.stderr
    results: list[dict[str, Any]] = json.loads(validated.stdout)
    return [result for result in results if result["error"] is not None]


# --------------------------------------------------------------------------------- schemas
def test_every_object_is_valid_for_kubernetes_and_strimzi(rendered: Rendered) -> None:
    custom = [o for o in rendered.objects if o["apiVersion"].startswith("kafka.strimzi.io/")]
    for version in KUBERNETES_VERSIONS:
        for document in rendered.objects:
            if document in custom:
                continue
            try:
                kubernetes_schemas.validate(document, version, strict=True)
            except kubernetes_schemas.ValidationError as error:
                pytest.fail(
                    f"{document['kind']} {document['metadata']['name']} on Kubernetes {version}: "
                    f"{error.message} at {'.'.join(str(part) for part in error.absolute_path)}"
                )
    assert strimzi_errors(custom) == []
    assert bool(custom) == (rendered.name == "production")


def test_the_validators_refuse_what_is_wrong() -> None:
    """The checks above can fail: a wrong type, an unknown field and a bad Strimzi value."""
    deployment = next(o for o in render() if o["kind"] == "Deployment")
    wrong_type = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    unknown_field = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    for broken in (wrong_type, unknown_field):
        with pytest.raises(kubernetes_schemas.ValidationError):
            kubernetes_schemas.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    user = next(o for o in render(*VALUES["production"]) if o["kind"] == "KafkaUser")
    broken_user = {**user, "spec": {**user["spec"], "authentication": {"type": "scram"}}}
    [refused] = strimzi_errors([broken_user])
    assert "authentication/type" in refused["error"]


# ------------------------------------------------------------------------ against the code
def test_each_container_runs_its_cli_with_settings_it_reads_and_accepts(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    for workload, pod in rendered.workloads():
        for container in containers(pod):
            env = environment(container)
            where = f"{component(workload)}/{container['name']}"
            if container.get("command") == ["pizzeria"]:
                check_pizzeria_command(monkeypatch, container["args"], env, where)
                continue
            assert "command" not in container, f"{where}: the image's entrypoint is the CLI"
            service = service_of_image(container)
            with monkeypatch.context() as scoped:
                started = start_service_cli(scoped, service, container["args"], env)
                read = set().union(*(env_names(s) for s in SETTINGS[service]))
                if container["args"] == ["serve"]:
                    assert started.settings.refusals(AuthSettings()) == [], where
            assert set(env) <= read, f"{where}: no setting reads {sorted(set(env) - read)}"
            if container["args"] == ["migrate"]:
                assert not any(name.startswith(("KAFKA_", "AUTH_")) for name in env), (
                    f"{where}: a migration needs the database only"
                )
            if container["args"] == ["relay"]:
                assert not any(name.startswith("AUTH_") for name in env), where


def check_pizzeria_command(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], where: str
) -> None:
    """``pizzeria <args>`` parses, and its Kafka settings are accepted."""
    seen: list[Any] = []

    async def run(parsed: Any) -> int:
        seen.append(parsed)
        return 0

    with monkeypatch.context() as scoped:
        scoped.setattr(contracts.cli, "_run", run)
        use_environment(scoped, env)
        assert contracts.cli.main(args) == 0, where
        KafkaSecurity()
    assert len(seen) == 1, where
    assert set(env) <= env_names(KafkaSecurity) | {"KAFKA_BOOTSTRAP_SERVERS"}, where
    assert env["KAFKA_SASL_USERNAME"].endswith("admin"), f"{where}: topics and ACLs are admin's"


def test_ports_and_probes_are_the_ones_the_processes_serve(rendered: Rendered) -> None:
    served_by_services = {route.path for route in operations_router({}).routes}  # type: ignore[attr-defined]
    served_by_relays = relay_paths_served({"/healthz", "/readyz"})
    deployments = {component(d): d for d in rendered.of_kind("Deployment")}
    assert set(deployments) == set(HTTP_PORTS) | {f"{s}-relay" for s in RELAY_METRICS_PORTS}
    for name, deployment in deployments.items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = environment(container)
        [port] = container["ports"]
        if name in HTTP_PORTS:
            expected, served = HTTP_PORTS[name], served_by_services
            assert env[f"{name.upper()}_HTTP_PORT"] == str(expected)
            assert env[f"{name.upper()}_HTTP_HOST"] == "0.0.0.0"
        else:
            service = name.removesuffix("-relay")
            expected, served = RELAY_METRICS_PORTS[service], served_by_relays
            assert env[f"{service.upper()}_RELAY_METRICS_PORT"] == str(expected)
            assert env[f"{service.upper()}_RELAY_METRICS_HOST"] == "0.0.0.0"
        assert port["containerPort"] == expected
        probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
        assert probes["livenessProbe"]["path"] == "/healthz"
        assert probes["readinessProbe"]["path"] == "/readyz"
        for probe in (*probes.values(), container["startupProbe"]["httpGet"]):
            assert probe["port"] == port["name"] and probe["path"] in served, name
        [service_port] = rendered.named("Service", deployment["metadata"]["name"])["spec"]["ports"]
        assert (service_port["port"], service_port["targetPort"]) == (expected, port["name"])


def relay_paths_served(paths: set[str]) -> set[str]:
    """Of ``paths``, those a relay's health server answers (its real server, asked over HTTP)."""

    async def ask() -> set[str]:
        async def ready() -> tuple[bool, str]:
            return True, "ok"

        port = free_port()
        server = await serve_health("127.0.0.1", port, ready)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                return {path for path in paths if (await client.get(path)).status_code == 200}
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(ask())


def test_topics_and_principals_are_the_contracts(rendered: Rendered) -> None:
    values = chart_values(rendered.name)
    declared = {t["name"]: (t["partitions"], t["config"]) for t in values["kafka"]["topics"]}
    assert declared == {t.name: (t.partitions, dict(t.config)) for t in ALL_TOPICS}
    principals = values["kafka"]["principals"]
    assert principals == {
        access.principal: {
            key: value
            for key, value in {
                "reads": [t.name for t in access.reads],
                "writes": [t.name for t in access.writes],
                "groupPrefix": access.group_prefix,
            }.items()
            if value
        }
        for access in PRINCIPALS
    }
    users = rendered.of_kind("KafkaUser")
    if rendered.name == "default":
        assert users == [] and rendered.of_kind("KafkaTopic") == []
        return
    prefix = values["kafka"]["userPrefix"]
    operations = {"Read": Operation.READ, "Write": Operation.WRITE}
    resources = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP}
    patterns = {"literal": PatternType.LITERAL, "prefix": PatternType.PREFIXED}
    granted = {
        (
            user["metadata"]["name"].removeprefix(prefix),
            operations[operation],
            resources[acl["resource"]["type"]],
            acl["resource"]["name"],
            patterns[acl["resource"]["patternType"]],
        )
        for user in users
        for acl in user["spec"]["authorization"]["acls"]
        for operation in acl["operations"]
    }
    assert granted == {
        (g.principal, g.operation, g.resource, g.name, g.pattern) for g in every_grant()
    }
    topics = {t["spec"]["topicName"]: t["spec"] for t in rendered.of_kind("KafkaTopic")}
    assert set(topics) == {t.name for t in ALL_TOPICS}
    for spec in topics.values():
        assert (spec["replicas"], spec["config"]["min.insync.replicas"]) == (
            REPLICATION_FACTOR,
            MIN_INSYNC_REPLICAS,
        )
    # Each process signs in as its KafkaUser, whose Secret Strimzi names after it.
    for _, pod in rendered.workloads():
        for container in containers(pod):
            user = environment(container).get("KAFKA_SASL_USERNAME")
            if user is not None:
                assert user in {u["metadata"]["name"] for u in users}


def test_no_consumer_scales_past_the_partitions_it_can_use(rendered: Rendered) -> None:
    values = chart_values(rendered.name)
    partitions = {t.name: t.partitions for t in ALL_TOPICS}
    dead_letter_topics = {t.dead_letters for t in TOPOLOGY.topics if t.dead_letters}
    reads = {access.principal: {t.name for t in access.reads} for access in PRINCIPALS}
    for service, settings in values["services"].items():
        # What the group consumes: what the principal reads, but the dead letters it only checks.
        assert set(settings["consumes"]) == reads[service] - dead_letter_topics, service
    for autoscaler in rendered.of_kind("HorizontalPodAutoscaler"):
        service = component(autoscaler)
        most = max(partitions[topic] for topic in values["services"][service]["consumes"])
        assert autoscaler["spec"]["maxReplicas"] <= most, service
    assert bool(rendered.of_kind("HorizontalPodAutoscaler")) == (rendered.name == "production")
    too_many = helm_template(
        "--set", "services.kitchen.autoscaling.enabled=true",
        "--set", "services.kitchen.autoscaling.maxReplicas=7",
    )  # fmt: skip
    assert too_many.returncode != 0
    assert "the partitions its consumer group can use (6" in too_many.stderr


def test_secrets_come_from_kubernetes_secrets_only(rendered: Rendered) -> None:
    secret_like = re.compile(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|AUTH_TOKEN|ACCOUNT_SID")
    for workload, pod in rendered.workloads():
        for container in containers(pod):
            for variable in container.get("env", []):
                if secret_like.search(variable["name"]):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), (
                        f"{component(workload)}: {variable['name']} is written into the chart"
                    )
        assert pod["spec"]["automountServiceAccountToken"] is False
    assert rendered.of_kind("Secret") == []


def test_hooks_prepare_the_database_and_the_broker_before_the_pods(rendered: Rendered) -> None:
    jobs = {component(job): job for job in rendered.of_kind("Job")}
    migrations = {f"{service}-migrate" for service in HTTP_PORTS}
    setup = set() if rendered.name == "production" else {"kafka-setup"}  # Strimzi's, else ours
    assert set(jobs) == migrations | setup
    weights = {}
    for name, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade", name
        weights[name] = int(annotations["helm.sh/hook-weight"])
    for name in setup:
        assert all(weights[name] < weights[migration] for migration in migrations)
        args = [c["args"] for c in containers(jobs[name]["spec"]["template"])]
        assert args[0][:2] == ["topics", "ensure"] and args[1] == ["access", "ensure"]


def test_network_policies_allow_what_each_pod_needs_and_nothing_else(rendered: Rendered) -> None:
    policies = rendered.of_kind("NetworkPolicy")

    def selecting(pod: dict[str, Any], direction: str) -> list[dict[str, Any]]:
        labels = pod["metadata"]["labels"]
        return [
            p
            for p in policies
            if direction in p["spec"]["policyTypes"]
            and p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        ]

    for workload, pod in rendered.workloads():
        name = component(workload)
        ingress, egress = selecting(pod, "Ingress"), selecting(pod, "Egress")
        # The deny-all policy (no rules) selects every pod, both ways.
        assert any("ingress" not in p["spec"] and "egress" not in p["spec"] for p in ingress)
        env = set().union(*(environment(c) for c in containers(pod)))
        allowed_out = {
            port["port"]
            for policy in egress
            for rule in policy["spec"].get("egress", [])
            for port in rule["ports"]
        }
        assert 53 in allowed_out, name
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            assert {9092, 9093} <= allowed_out, f"{name} talks to Kafka"
        if any(variable.endswith("_DATABASE_URL") for variable in env):
            assert 5432 in allowed_out, f"{name} talks to PostgreSQL"
        for container in containers(pod):
            for port in container.get("ports", []):
                allowed_in = {
                    allowed["port"]
                    for policy in ingress
                    for rule in policy["spec"].get("ingress", [])
                    for allowed in rule["ports"]
                }
                assert port["containerPort"] in allowed_in, f"{name}: port {port} unreachable"
