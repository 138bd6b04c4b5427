"""The requests the demo sends through the gateway, and what each one should produce.

Each scenario is one ``POST /orders``; the gateway answers with the HTTP status and an ``x-trace-id`` header
naming the trace it started, which is how the demo finds each request's trace in the receiver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

__all__ = ["ALL_SERVICES", "SCENARIOS", "Outcome", "Scenario", "drive"]

ALL_SERVICES = ("gateway", "orders", "inventory", "pricing")
"""The demo's services, in the order a request reaches them."""

_REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Scenario:
    """One request and its expected result.

    Attributes:
        title: What the request shows.
        body: The JSON body of ``POST /orders``.
        http_status: The gateway's expected answer.
        grpc_code: The gRPC status orders is expected to answer the gateway with.
        spans: How many spans the request's trace has once complete.
        services: The services expected in the trace.
    """

    title: str
    body: dict[str, object]
    http_status: int
    grpc_code: str
    spans: int
    services: tuple[str, ...] = ALL_SERVICES

    @property
    def request_line(self) -> str:
        """``POST /orders {"sku": ...}``."""
        return f"POST /orders {json.dumps(self.body)}"


# A complete order: gateway SERVER + CLIENT, orders SERVER, then from orders Check, Warehouses (gRPC) and the
# price (HTTP), each a CLIENT span in orders and a SERVER span in the callee: 3 + 3 * 2 = 9 spans.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("an order served from one warehouse", {"sku": "widget", "quantity": 2}, 200, "OK", 9),
    Scenario("an order streamed from three warehouses", {"sku": "gadget", "quantity": 10}, 200, "OK", 9),
    Scenario(
        "an unknown item: inventory answers NOT_FOUND, the gateway 404",
        {"sku": "unobtainium", "quantity": 1},
        404,
        "NOT_FOUND",
        5,  # orders stops after Check: no stream, no price
        ("gateway", "orders", "inventory"),
    ),
    Scenario(
        "a slow warehouse: orders' 0.5 s budget for inventory runs out, DEADLINE_EXCEEDED, the gateway 504",
        {"sku": "anvil", "quantity": 1},
        504,
        "DEADLINE_EXCEEDED",
        9,
    ),
)
"""What ``python -m examples.demo`` sends, in order."""


@dataclass(frozen=True)
class Outcome:
    """What the gateway answered to one scenario.

    Attributes:
        scenario: The request sent.
        http_status: The status received.
        body: The JSON body received (``{}`` when it was not JSON).
        trace_id: The ``x-trace-id`` header, or ``None`` when absent.
        served_by: The ``x-served-by`` header: the pid of the gateway process that answered.
    """

    scenario: Scenario
    http_status: int
    body: dict[str, object]
    trace_id: str | None
    served_by: str | None = None

    @property
    def as_expected(self) -> bool:
        """The gateway answered the expected status and named the trace."""
        return self.http_status == self.scenario.http_status and self.trace_id is not None

    @property
    def summary(self) -> str:
        """One line: the order placed, or the error the gateway reported."""
        body = self.body
        if "order_id" in body:
            return f"order {body['order_id']}: {body['quantity']} x {body['name']}, {body['total']} {body['currency']}"
        return f"{body.get('error', '?')}: {body.get('detail', '')}"


def drive(gateway_url: str, scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[Outcome]:
    """Send each scenario's request to the gateway, one after the other.

    Raises:
        httpx.HTTPError: the gateway could not be reached or did not answer in time.
    """
    outcomes: list[Outcome] = []
    # A new connection per request, so that a gateway with several worker processes spreads them out.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=gateway_url, timeout=_REQUEST_TIMEOUT_S, limits=no_reuse) as client:
        for scenario in scenarios:
            response = client.post("/orders", json=scenario.body)
            try:
                body = response.json()
            except json.JSONDecodeError:
                body = {}
            outcomes.append(
                Outcome(
                    scenario,
                    response.status_code,
                    body if isinstance(body, dict) else {},
                    response.headers.get("x-trace-id"),
                    response.headers.get("x-served-by"),
                )
            )
    return outcomes
