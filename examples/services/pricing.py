"""pricing: a Starlette app under uvicorn, wrapped in ``hoptel.ASGIMiddleware``, that speaks B3 only.

The demo starts it with ``OTEL_PROPAGATORS=b3``: it reads the single ``b3`` header and ignores ``traceparent``.
Its span still joins the gateway's trace because orders injects B3 next to W3C on this hop (see orders.py).

``GET /prices/{sku}?quantity=N`` answers ``{"sku", "quantity", "unit_price", "total", "currency"}`` (amounts
as decimal strings), or 404 for an item without a price.

Run alone: ``OTEL_PROPAGATORS=b3 python -m examples.services.pricing --port 8001``.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import hoptel
from examples.services import runtime

__all__ = ["PRICES", "build_app", "main"]

log = logging.getLogger("pricing")

PRICES: dict[str, Decimal] = {"widget": Decimal("4.50"), "gadget": Decimal("19.99"), "anvil": Decimal("120.00")}
"""Unit prices in EUR."""


async def price(request: Request) -> JSONResponse:
    """``GET /prices/{sku}?quantity=N``: a quote for ``N`` items."""
    sku = request.path_params["sku"]
    try:
        quantity = int(request.query_params.get("quantity", "1"))
    except ValueError:
        return JSONResponse({"error": "quantity must be an integer"}, status_code=400)
    unit = PRICES.get(sku)
    if unit is None:
        return JSONResponse({"error": f"no price for {sku!r}"}, status_code=404)
    # The raw header shows which wire format carried the trace context here: B3, not W3C.
    log.info("quoted %d x %s (trace context arrived as b3: %s)", quantity, sku, request.headers.get("b3", "none"))
    total = unit * quantity
    return JSONResponse(
        {"sku": sku, "quantity": quantity, "unit_price": str(unit), "total": str(total), "currency": "EUR"}
    )


def build_app() -> Starlette:
    """The pricing app with hoptel's ASGI middleware outermost."""
    return Starlette(routes=[Route("/prices/{sku}", price)], middleware=[Middleware(hoptel.ASGIMiddleware)])


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM, SIGINT or (with ``--watch-stdin``) end of input."""
    args = runtime.parse_args("pricing", "The demo's pricing service (HTTP, B3 propagation only).", {}, argv)
    telemetry = runtime.start_telemetry("pricing")
    runtime.serve_asgi("pricing", build_app(), args, telemetry)


if __name__ == "__main__":
    main()
