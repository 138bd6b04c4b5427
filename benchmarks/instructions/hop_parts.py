"""Where a hop's instructions go: the steps of a client and a server hop counted one by one under callgrind.

``python -m benchmarks.instructions --parts`` runs this program as the gate runs ``hop_loop`` (same phases, same
determinism) and prints each step's instructions beside the whole hops. The steps are the recorder's own calls,
in the order a unary hop makes them:

- client: read the current context, start the span (ids, sampling decision, span object), render and copy the
  outgoing metadata, count ``started``, build the hop object; at the end the latency histogram (which also counts
  ``handled``; with the trace-id exemplar when sampled) and ``span.end()`` (queueing it);
- server: parse the incoming ``traceparent``, start the span under the remote parent, build the handler's
  context, attach and detach it around the handler, and the same finishing steps.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from benchmarks.instructions.hop_loop import METHOD, OUTGOING, TRACE_ID, KeepExporter, count_phases, gate_telemetry
from hoptel.hop_span import SPAN_KEY
from hoptel.interceptors.grpc.names import UNARY
from hoptel.interceptors.recorder import GrpcHop, HopRecorder

__all__ = ["main", "part_scenarios"]

_OK = grpc.StatusCode.OK
_CLIENT = SpanKind.CLIENT  # looked up once, as the recorder does: an enum member lookup costs ~850 instructions
_SERVER = SpanKind.SERVER


def part_scenarios(sampled: bool) -> dict[str, Callable[[], object]]:
    """The steps of a client and a server hop, each alone, for a Telemetry that samples or not."""
    label = "sampled" if sampled else "unsampled"
    telemetry = gate_telemetry(f"parentbased_always_{'on' if sampled else 'off'}", KeepExporter())
    recorder = HopRecorder.of(telemetry)
    tracer, propagator = recorder.tracer, recorder.propagator
    client_route = recorder.grpc_route("client", UNARY, METHOD)
    server_route = recorder.grpc_route("server", UNARY, METHOD)
    incoming = (("traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-{'01' if sampled else '00'}"), ("user-agent", "x"))
    root = otel_context.get_current()
    span = tracer.start_span(client_route.span_name, root, _CLIENT, client_route.attributes)
    span_context = span.get_span_context()
    parent, entries = propagator.extract_metadata_parent(incoming)
    server_context = Context({**entries, SPAN_KEY: span})
    ok = client_route.ok
    if ok is None:  # pragma: no cover - a known route always has its OK outcome
        raise RuntimeError("the route has no OK outcome")
    trace_id = span_context.trace_id
    start_remote = tracer.start_remote_child

    def start_client_span() -> object:
        return tracer.start_span(client_route.span_name, root, _CLIENT, client_route.attributes)

    def start_and_end_client_span() -> None:
        tracer.start_span(client_route.span_name, root, _CLIENT, client_route.attributes).end()

    def attach_detach() -> None:
        otel_context.detach(otel_context.attach(server_context))

    def histogram_observe() -> None:
        if sampled:
            client_route.histogram.observe(0.0003, trace_id)
        else:
            client_route.histogram.observe(0.0003)

    return {
        f"client: current context {label}": otel_context.get_current,
        f"client: start span {label}": start_client_span,
        f"client: start + end span {label}": start_and_end_client_span,
        f"client: inject traceparent {label}": lambda: propagator.inject_span_metadata(OUTGOING, span_context, root),
        f"client: hop object {label}": lambda: GrpcHop(client_route, span, root),
        f"server: extract traceparent {label}": lambda: propagator.extract_metadata_parent(incoming),
        f"server: start span {label}": lambda: start_remote(
            server_route.span_name, parent, _SERVER, server_route.attributes
        ),
        f"server: handler context {label}": lambda: Context({**entries, SPAN_KEY: span}),
        f"server: attach + detach {label}": attach_detach,
        f"metrics: started {label}": client_route.started.tick,
        f"metrics: latency histogram {label}": histogram_observe,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Count every step (see the module docstring); write the scenario names, in order, to the manifest."""
    args: list[Any] = list(sys.argv[1:] if argv is None else argv)
    n, warmup, manifest = int(args[0]), int(args[1]), Path(args[2])
    calls: dict[str, Callable[[], object]] = {"empty": lambda: None}
    calls.update(part_scenarios(sampled=True))
    calls.update(part_scenarios(sampled=False))
    for call in calls.values():
        count_phases(call, n, warmup)
    manifest.write_text(json.dumps({"n": n, "scenarios": list(calls)}), encoding="utf-8")


if __name__ == "__main__":
    main()
