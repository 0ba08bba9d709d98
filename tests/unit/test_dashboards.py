"""deploy/prometheus and deploy/grafana agree with the code: every port, every metric name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from prometheus_client import REGISTRY

import eventing.metrics
import kitchen.adapters.metrics
import notifications.adapters.metrics
import orders.adapters.metrics
from analytics.settings import AnalyticsSettings
from kitchen.settings import KitchenRelaySettings, KitchenSettings
from notifications.settings import NotificationsSettings
from orders.settings import OrdersRelaySettings, OrdersSettings

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_LOCAL = ROOT / "deploy" / "prometheus" / "prometheus.yml"
PROMETHEUS_COMPOSE = ROOT / "deploy" / "prometheus" / "prometheus-compose.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "mario-pizzeria-dashboard.json"

METRICS_MODULES = (
    eventing.metrics,
    orders.adapters.metrics,
    kitchen.adapters.metrics,
    notifications.adapters.metrics,
)


def default(settings: type[Any], field: str) -> int:
    value: int = settings.model_fields[field].default
    return value


# job name (as in `make status` and the compose service names) -> the port its settings default to
PORTS = {
    "orders": default(OrdersSettings, "http_port"),
    "kitchen": default(KitchenSettings, "http_port"),
    "notifications": default(NotificationsSettings, "http_port"),
    "analytics": default(AnalyticsSettings, "http_port"),
    "orders-relay": default(OrdersRelaySettings, "metrics_port"),
    "kitchen-relay": default(KitchenRelaySettings, "metrics_port"),
}


def scrape_targets(path: Path) -> dict[str, list[str]]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    targets: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        assert job["job_name"] not in targets, f"job {job['job_name']} twice in {path.name}"
        targets[job["job_name"]] = [
            target for static in job["static_configs"] for target in static["targets"]
        ]
    return targets


def test_the_ports_are_the_documented_ones() -> None:
    assert PORTS == {
        "orders": 8001,
        "kitchen": 8002,
        "notifications": 8003,
        "analytics": 8004,
        "orders-relay": 9101,
        "kitchen-relay": 9102,
    }


@pytest.mark.parametrize(
    ("path", "host_of"),
    [
        (PROMETHEUS_LOCAL, lambda job: "127.0.0.1"),
        (PROMETHEUS_COMPOSE, lambda job: job),  # compose service names
    ],
    ids=["local", "compose"],
)
def test_prometheus_scrapes_every_service_and_relay(path: Path, host_of: Any) -> None:
    targets = scrape_targets(path)
    assert targets == {job: [f"{host_of(job)}:{port}"] for job, port in PORTS.items()}


def test_compose_service_names_exist() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert set(PORTS) <= set(compose["services"])


def exported_names() -> set[str]:
    """Sample names the registry exports.

    A family with samples exports exactly those (a histogram with negative buckets, such as
    kitchen_lateness_seconds, has no _sum). A labelled family with no series yet has no samples:
    counters then stand for _total, histograms for _bucket, _sum and _count.
    """
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.samples:
            names |= {sample.name for sample in family.samples}
            continue
        match family.type:
            case "counter":
                names |= {f"{family.name}_total", f"{family.name}_created"}
            case "histogram":
                names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
            case "summary":
                names |= {f"{family.name}{suffix}" for suffix in ("", "_sum", "_count")}
            case _:
                names.add(family.name)
    return names


# PromQL words that look like metric names: functions, aggregations, keywords, Grafana variables.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "rate", "irate", "increase", "delta", "idelta", "deriv", "histogram_quantile", "abs",
    "clamp_min", "clamp_max", "label_values", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "and", "or", "unless", "time", "vector", "scalar",
    "max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "up",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (label matchers, ranges and groupings removed)."""
    stripped = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    stripped = re.sub(r"\{[^}]*\}", "", stripped)  # label matchers
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # range selectors
    stripped = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", stripped)  # groupings
    stripped = re.sub(r"\$\w+", "", stripped)  # Grafana variables
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", stripped))
    return words - PROMQL_WORDS


def dashboard_panels() -> list[dict[str, Any]]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    panels: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_every_metric_the_dashboard_uses_exists_in_the_code() -> None:
    exported = exported_names()
    used = {
        name
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
        for name in metric_names(target["expr"])
    }
    assert used - exported == set()
    # The panels the dashboard promises, by the metrics behind them.
    assert {
        "orders_placed_total",
        "outbox_backlog_events",
        "outbox_oldest_unpublished_age_seconds",
        "outbox_published_events_total",
        "outbox_publish_latency_seconds_bucket",
        "consumer_lag_records",
        "consumer_handler_failures_total",
        "consumer_retries_total",
        "consumer_dead_letters_total",
        "consumer_duplicates_skipped_total",
        "kitchen_cooking_seconds_bucket",
        "kitchen_lateness_seconds_bucket",
        "notifications_sent_total",
    } <= used


def test_the_metric_name_parser_sees_through_promql() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (job, le) (rate(outbox_publish_latency_seconds_bucket"
        '{job=~"$job", le!="x"}[$__rate_interval]))) / on (job) group_left max(up)'
    )
    assert metric_names(expr) == {"outbox_publish_latency_seconds_bucket"}


def test_business_metrics_follow_the_conventions() -> None:
    exported = exported_names()
    for name in (
        "orders_placed_total",
        "orders_transitions_total",
        "order_value_euros_bucket",
        "kitchen_cooking_seconds_bucket",
        "kitchen_tickets_total",
        "kitchen_lateness_seconds_bucket",
        "notifications_sent_total",
    ):
        assert name in exported, name
