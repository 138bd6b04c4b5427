"""The PromQL in a Grafana dashboard: every panel target and template-variable query, ready to send to Prometheus.

Grafana expands variables before it queries: ``$name``, ``${name}`` (and ``${name:format}``), ``[[name]]``, and
built-ins such as ``$__rate_interval``. :func:`substitute` does the same with concrete values, so a test can send
each query to a real Prometheus. A variable query ``label_values(selector, label)`` is what Grafana answers from
``/api/v1/label/<label>/values?match[]=<selector>`` (``label_values(label)`` without a selector), so
:class:`LabelValues` describes that request instead of an expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BUILTINS", "DashboardQuery", "LabelValues", "load", "panels", "queries", "substitute", "variables_used"]

BUILTINS: Mapping[str, str] = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
}
"""Concrete values for Grafana's built-in variables (``$__rate_interval`` as the tests' 1m)."""

_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class LabelValues:
    """A ``label_values(selector, label)`` variable query: the values of ``label`` on the series ``selector``."""

    label: str
    selector: str | None


@dataclass(frozen=True)
class DashboardQuery:
    """One query of the dashboard: where it is (panel title and refId, or variable name) and its text."""

    where: str
    text: str

    def label_values(self) -> LabelValues | None:
        """The ``label_values(...)`` request this query stands for, or None for a PromQL expression."""
        match = _LABEL_VALUES.match(self.text)
        if match is None:
            return None
        return LabelValues(match["label"], match["selector"])


def load(path: Path) -> dict[str, Any]:
    """The dashboard JSON at ``path``."""
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row holds its panels


def panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows included, with the panels inside collapsed rows."""
    return list(_panels(dashboard.get("panels", [])))


def queries(dashboard: Mapping[str, Any]) -> list[DashboardQuery]:
    """Every panel target's ``expr`` and every query variable's query, in dashboard order."""
    found = [
        DashboardQuery(f"panel {panel.get('title')!r} target {target.get('refId')}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        found.append(DashboardQuery(f"variable {variable['name']!r}", str(text)))
    return found


def variables_used(text: str) -> set[str]:
    """The names of the variables ``text`` refers to (built-ins included)."""
    return {next(name for name in match.groups() if name) for match in _VARIABLE.finditer(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every variable replaced by its value in ``values`` or :data:`BUILTINS`.

    Raises:
        KeyError: ``text`` uses a variable that has no value.

    >>> substitute('rate(x{job=~"$job"}[$__rate_interval])', {"job": "orders"})
    'rate(x{job=~"orders"}[1m])'
    """
    known = {**BUILTINS, **values}

    def value(match: re.Match[str]) -> str:
        name = next(name for name in match.groups() if name)
        return known[name]

    return _VARIABLE.sub(value, text)
