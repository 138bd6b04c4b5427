"""End to end: the shipped dashboard, recording rules and alerts against a real Prometheus scraping a hoptel service.

traffic_app.py (a subprocess) serves a gRPC service and a Starlette app under uvicorn, instrumented by hoptel, and
calls them steadily through hoptel's gRPC client interceptor and httpx transport, with some server errors
(INTERNAL, 503), some caller errors (NOT_FOUND, 404) and some successes. The Debian ``prometheus`` scrapes it every
second with examples/prometheus/hoptel-rules.yml and hoptel-alerts.yml loaded, evaluated every second. Then every
dashboard query (variables replaced by the scraped job, instance and gRPC service; ``$__rate_interval`` by 1m),
every recording rule and the queries of a go-grpc-middleware dashboard must return data through Prometheus's HTTP
API, and the burn-rate alerts must fire for this failing traffic. A second Prometheus, with native histograms
enabled, scrapes the same app: hoptel's histograms must still arrive as the classic series those queries read.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from support import grafana
from support.ports import free_port

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = TESTS.parent / "examples"
RULE_FILES = (EXAMPLES / "prometheus" / "hoptel-rules.yml", EXAMPLES / "prometheus" / "hoptel-alerts.yml")
DASHBOARD = EXAMPLES / "grafana" / "hoptel-dashboard.json"
APP = Path(__file__).with_name("traffic_app.py")
JOB = "traffic"
GRPC_SERVICE = "hoptel.test.Shop"
DATA_TIMEOUT_S = 60.0  # bounds: two scrapes inside each rate window, a few rule evaluations, on a busy machine
STOP_TIMEOUT_S = 10.0
POLL_S = 0.5

# Queries of the usual go-grpc-middleware (go-grpc-prometheus) dashboards and README examples, verbatim.
GO_GRPC_MIDDLEWARE_QUERIES = [
    'sum(rate(grpc_server_handled_total{grpc_type="unary"}[1m])) by (grpc_service, grpc_method)',
    "histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket[1m])) by (le))",
    'sum(rate(grpc_server_started_total{job="traffic"}[1m])) by (grpc_service)',
    'sum(rate(grpc_server_handled_total{job="traffic",grpc_type="unary",grpc_code!="OK"}[1m])) by (grpc_service)'
    ' / sum(rate(grpc_server_started_total{job="traffic",grpc_type="unary"}[1m])) by (grpc_service) * 100.0',
    'histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{job="traffic",grpc_type="unary"}[5m]))'
    " by (grpc_service,le))",
    "sum(rate(grpc_server_msg_received_total[1m])) by (grpc_service)",
    "sum(rate(grpc_server_msg_sent_total[1m])) by (grpc_service)",
    'sum(rate(grpc_client_handled_total{grpc_type="unary"}[1m])) by (grpc_service, grpc_method, grpc_code)',
    'histogram_quantile(0.9, sum(rate(grpc_client_handling_seconds_bucket{grpc_type="unary"}[1m]))'
    " by (grpc_service, grpc_method, le))",
]


@dataclass(frozen=True)
class TrafficApp:
    """The running traffic app: its metrics address and its stderr, for failure messages."""

    target: str
    logs: Callable[[], str]


@dataclass(frozen=True)
class Live:
    """A running Prometheus (rules loaded) scraping the running traffic app at ``target``."""

    prometheus: Any  # conftest.PrometheusServer
    target: str


def _prometheus_config(target: str, rule_files: tuple[Path, ...] = RULE_FILES) -> str:
    listed = "".join(f'  - "{path}"\n' for path in rule_files)
    rules = f"rule_files:\n{listed}" if listed else ""
    return (
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        f"{rules}"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f'      - targets: ["{target}"]\n'
    )


@pytest.fixture(scope="module")
def traffic_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrafficApp]:
    """Start the traffic app serving its metrics on a free loopback port; stop it when the module is done."""
    app_log_path = tmp_path_factory.mktemp("traffic-app") / "app.log"
    target = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOPTEL_"))}
    env.update(
        HOPTEL_METRICS_ADDR=target,
        OTEL_TRACES_EXPORTER="none",
        PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")])),
    )

    def app_logs() -> str:
        lines = app_log_path.read_text(errors="replace").splitlines()[-40:] if app_log_path.exists() else []
        return "--- traffic app stderr ---\n" + "\n".join(lines)

    with app_log_path.open("wb") as app_log:
        app = subprocess.Popen(
            [sys.executable, str(APP)], stdin=subprocess.PIPE, stdout=app_log, stderr=app_log, env=env
        )
        try:
            yield TrafficApp(target, app_logs)
        finally:
            if app.stdin is not None:
                app.stdin.close()  # the app stops calling and shuts down on EOF
            with contextlib.suppress(subprocess.TimeoutExpired):
                app.wait(STOP_TIMEOUT_S)
            if app.poll() is None:
                app.kill()
                app.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def live(
    traffic_app: TrafficApp, prometheus: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Prometheus with the shipped rules, scraping the traffic app; ready once it has scraped the app."""
    directory = tmp_path_factory.mktemp("dashboard")
    with prometheus(directory, _prometheus_config(traffic_app.target), traffic_app.logs) as server:
        server.wait_for_scrapes(JOB)
        yield Live(server, traffic_app.target)


@pytest.fixture(scope="module")
def native_histograms(
    traffic_app: TrafficApp, prometheus: Callable[..., Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A second Prometheus, no rules, with ``--enable-feature=native-histograms``, scraping the same app."""
    directory = tmp_path_factory.mktemp("native-histograms")
    config = _prometheus_config(traffic_app.target, rule_files=())
    with prometheus(directory, config, traffic_app.logs, features=["native-histograms"]) as server:
        server.wait_for_scrapes(JOB)
        yield Live(server, traffic_app.target)


def _ask(live: Live, query: grafana.DashboardQuery, values: dict[str, str]) -> list[Any]:
    """What Prometheus answers to a dashboard query: the result vector, or a variable's label values."""
    request = query.label_values()
    if request is None:
        return list(live.prometheus.query(grafana.substitute(query.text, values)))
    params = {} if request.selector is None else {"match[]": grafana.substitute(request.selector, values)}
    return list(live.prometheus.api(f"label/{request.label}/values", params))


def _wait_until_all_answer(live: Live, asks: Mapping[str, Callable[[], list[Any]]]) -> dict[str, list[Any]]:
    """Ask each question until every one has a non-empty answer; fail naming those still empty after the timeout."""
    answers: dict[str, list[Any]] = {}
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while True:
        for name, ask in asks.items():
            if name not in answers and (answer := ask()):
                answers[name] = answer
        if len(answers) == len(asks):
            return answers
        if time.monotonic() > deadline:
            empty = "\n".join(name for name in asks if name not in answers)
            pytest.fail(f"no data after {DATA_TIMEOUT_S:.0f}s for:\n{empty}\n{live.prometheus.logs()}")
        time.sleep(POLL_S)


def _values(live: Live) -> dict[str, str]:
    return {"job": JOB, "instance": live.target, "grpc_service": GRPC_SERVICE}


def test_every_dashboard_query_returns_data(live: Live) -> None:
    """Each panel target and variable query of the dashboard, with the variables set, answers with data."""
    queries = grafana.queries(grafana.load(DASHBOARD))
    assert len(queries) > 20
    values = _values(live)
    asks = {f"{q.where}: {q.text}": partial(_ask, live, q, values) for q in queries}
    _wait_until_all_answer(live, asks)


def test_dashboard_variables_offer_the_scraped_service(live: Live) -> None:
    """The job, instance and gRPC service variables list what Prometheus scraped."""
    queries = {q.where: q for q in grafana.queries(grafana.load(DASHBOARD))}
    values = _values(live)
    for name, expected in values.items():
        answer = _wait_until_all_answer(live, {name: partial(_ask, live, queries[f"variable {name!r}"], values)})
        assert answer[name] == [expected]


def _rules(live: Live, kind: str) -> list[dict[str, Any]]:
    groups = live.prometheus.api("rules", {"type": kind})["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _shipped(kind: str) -> set[str]:
    return {name for path in RULE_FILES for name in re.findall(rf"^\s+- {kind}: (\S+)$", path.read_text(), re.M)}


def test_every_recording_rule_returns_data(live: Live) -> None:
    """Prometheus loaded every shipped recording rule, and each one's expression and recorded series have data."""
    rules = _rules(live, "record")
    assert {rule["name"] for rule in rules} == _shipped("record")
    asks: dict[str, Callable[[], list[Any]]] = {}
    for rule in rules:
        asks[f"expression of {rule['name']}"] = partial(live.prometheus.query, rule["query"])
        asks[f"recorded {rule['name']}"] = partial(live.prometheus.query, f'{rule["name"]}{{job="{JOB}"}}')
    _wait_until_all_answer(live, asks)
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in _rules(live, "record") if rule["health"] != "ok"]
    assert unhealthy == []


def test_recorded_error_ratios_follow_the_error_definitions(live: Live) -> None:
    """Per method: INTERNAL is a server error and NOT_FOUND is not; on the client both are non-OK; 503 counts."""

    def ratio(record: str, **labels: str) -> Callable[[], list[Any]]:
        selector = ",".join([f'job="{JOB}"', *(f'{k}="{v}"' for k, v in labels.items())])
        return lambda: live.prometheus.query(f"{record}{{{selector}}}")

    server = "job_grpc_service_grpc_method:grpc_server_errors:ratio_rate5m"
    client = "job_grpc_service_grpc_method:grpc_client_errors:ratio_rate5m"
    http = "job_http_request_method_http_route:http_server_errors:ratio_rate5m"
    answers = _wait_until_all_answer(
        live,
        {
            "server Get": ratio(server, grpc_method="Get"),
            "server Fail": ratio(server, grpc_method="Fail"),
            "server Find": ratio(server, grpc_method="Find"),
            "client Find": ratio(client, grpc_method="Find"),
            "http items": ratio(http, http_route="/items/{item_id}"),
            "http no route": ratio(http, http_route=""),
        },
    )
    value = {name: float(answer[0]["value"][1]) for name, answer in answers.items()}
    assert value["server Get"] == 0.0
    assert value["server Fail"] == 1.0
    assert value["server Find"] == 0.0
    assert value["client Find"] == 1.0
    assert 0.0 < value["http items"] < 1.0
    assert value["http no route"] == 0.0  # 404s only


def test_burn_rate_alerts_fire_for_failing_traffic(live: Live) -> None:
    """A quarter of the calls fail with INTERNAL and some requests get 503: the fast burn alerts fire for the job."""
    wanted = {"HoptelGrpcErrorBudgetBurnFast", "HoptelHttpErrorBudgetBurnFast"}

    def firing() -> list[Any]:
        alerts = live.prometheus.api("alerts", {})["alerts"]
        names = {a["labels"]["alertname"] for a in alerts if a["state"] == "firing" and a["labels"].get("job") == JOB}
        return sorted(names & wanted) if names >= wanted else []

    _wait_until_all_answer(live, {"firing burn-rate alerts": firing})
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in _rules(live, "alert") if rule["health"] != "ok"]
    assert unhealthy == []
    assert {rule["name"] for rule in _rules(live, "alert")} == _shipped("alert")


@pytest.mark.parametrize("query", GO_GRPC_MIDDLEWARE_QUERIES)
def test_go_grpc_middleware_dashboard_queries_return_data(live: Live, query: str) -> None:
    """A query written for go-grpc-middleware's metrics answers with data for hoptel's."""
    _wait_until_all_answer(live, {query: lambda: live.prometheus.query(query)})


def test_prometheus_with_native_histograms_gets_the_classic_series(native_histograms: Live) -> None:
    """Native histograms on: Prometheus gets hoptel's histograms as classic series, none as a native histogram.

    Prometheus then asks for the protobuf exposition first; hoptel answers OpenMetrics, so the ``_bucket`` series
    that the rules and dashboards read are there.
    """
    server = native_histograms.prometheus
    quantile = f'histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket{{job="{JOB}"}}[1m])))'
    _wait_until_all_answer(native_histograms, {quantile: lambda: server.query(quantile)})
    histograms = "grpc_server_handling_seconds|grpc_client_handling_seconds"
    histograms += "|http_server_request_duration_seconds|http_client_request_duration_seconds"
    assert server.query(f'{{__name__=~"{histograms}",job="{JOB}"}}') == []
