"""examples/grafana/hoptel-dashboard.json: importable into any Grafana, its queries parametrised and valid PromQL.

That every query returns data from a real Prometheus scraping a hoptel service is tested in
test_rules_and_dashboard_live.py; these checks need no server.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import grafana

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana" / "hoptel-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECTOR_VARIABLES = {"job", "instance", "grpc_service"}
EXAMPLE_VALUES = {"job": "orders", "instance": "orders-0:9464", "grpc_service": "shop.Orders"}
PROMTOOL_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The shipped dashboard, parsed."""
    return grafana.load(DASHBOARD)


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_datasource_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    """The data source is chosen at import through a ``datasource`` variable of type datasource (Prometheus)."""
    variable = _variables(dashboard)["datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    assert "__inputs" not in dashboard  # nothing to map at import: the variable picks the data source


def test_every_panel_and_query_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    """No panel, target or query variable names a concrete data source: each one is ``${datasource}``."""
    used = [
        (panel["title"], thing.get("datasource"))
        for panel in grafana.panels(dashboard)
        if panel["type"] != "row"
        for thing in (panel, *panel["targets"])
    ]
    used += [(name, v["datasource"]) for name, v in _variables(dashboard).items() if v["type"] == "query"]
    assert used
    assert [(where, ds) for where, ds in used if ds != DATASOURCE] == []


def test_selector_variables_are_multi_value_queries(dashboard: dict[str, Any]) -> None:
    """Service (job), instance and gRPC service are query variables with multi-select and All."""
    variables = _variables(dashboard)
    assert variables.keys() >= SELECTOR_VARIABLES
    for name in SELECTOR_VARIABLES:
        assert variables[name]["type"] == "query"
        assert variables[name]["multi"] is True
        assert variables[name]["includeAll"] is True


def test_panels_filter_by_job_and_instance(dashboard: dict[str, Any]) -> None:
    """Every panel query is restricted to the selected job, and all but the recorded SLO series to the instance."""
    for query in grafana.queries(dashboard):
        if query.where.startswith("panel"):
            used = grafana.variables_used(query.text)
            assert "job" in used, query
            assert "instance" in used or "_errors:ratio_rate" in query.text, query


def test_every_variable_used_is_defined(dashboard: dict[str, Any]) -> None:
    """Each ``$name`` in a query is a dashboard variable or a Grafana built-in, so it substitutes."""
    defined = set(_variables(dashboard)) | set(grafana.BUILTINS)
    used = {name for query in grafana.queries(dashboard) for name in grafana.variables_used(query.text)}
    assert used - defined == set()
    assert {"job", "instance", "__rate_interval"} <= used


def test_panel_ids_and_positions_are_sound(dashboard: dict[str, Any]) -> None:
    """Panel ids are unique, refIds unique within a panel, and every panel fits the 24-column grid."""
    all_panels = grafana.panels(dashboard)
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids))
    for panel in all_panels:
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_queries_are_valid_promql(dashboard: dict[str, Any], promtool: str, tmp_path: Path) -> None:
    """After substitution, every query (a variable's selector included) parses: promtool checks them as rules."""
    expressions = []
    for query in grafana.queries(dashboard):
        text = grafana.substitute(query.text, EXAMPLE_VALUES)
        request = query.label_values()
        expressions.append(text if request is None else (request.selector or "up"))
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(expressions)],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def test_promql_check_is_not_vacuous(promtool: str, tmp_path: Path) -> None:
    """The same promtool check rejects a query with a syntax error, so the test above can fail."""
    path = tmp_path / "broken.yml"
    path.write_text(json.dumps({"groups": [{"name": "d", "rules": [{"record": "d:q", "expr": "sum by (job (up)"}]}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S, check=False
    )
    assert result.returncode != 0
