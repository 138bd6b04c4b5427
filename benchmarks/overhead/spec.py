"""What the benchmark runs: the workloads, the variants, and the sizes of a full and a quick run.

Everything here is plain data, shared by the launcher (which plans the run) and the workers (which do the work).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_VARIANTS",
    "ECHO_SERVICE",
    "PAYLOAD",
    "STREAM_METHOD",
    "UNARY_METHOD",
    "VARIANTS",
    "WORKLOADS",
    "Sizes",
    "Workload",
    "workload",
]

ECHO_SERVICE = "hoptel.bench.Echo"
UNARY_METHOD = f"/{ECHO_SERVICE}/Unary"
STREAM_METHOD = f"/{ECHO_SERVICE}/ServerStream"
PAYLOAD = b"x" * 64
"""The request and response body of every operation: small, so the hop's own cost dominates."""

VARIANTS = ("bare", "hoptel", "official")
"""The default variants. bare: no instrumentation; hoptel: this project; official: the OTel instrumentations and
py-grpc-prometheus."""

ALL_VARIANTS = (*VARIANTS, "noop", "hoptel_interceptors", "carrier")
"""Plus ``noop``: pass-through interceptors / transport / middleware that record nothing, the floor that any
instrumentation built on the same hooks pays (run it with ``--variants bare,noop,hoptel``); and
``hoptel_interceptors``: hoptel with its gRPC client interceptors instead of its instrumented channels; ``carrier``
(sync gRPC workloads only): a fixed trace header sent through the thinnest channel wrapper and a pass-through server
interceptor, nothing recorded: the floor of any propagating sync gRPC instrumentation."""


@dataclass(frozen=True, slots=True)
class Sizes:
    """How many operations one trial measures, after how many warm-up operations."""

    ops: int
    warmup: int


@dataclass(frozen=True, slots=True)
class Workload:
    """One workload: which worker serves it and how one measured operation is defined.

    Attributes:
        key: ``W1`` .. ``W6``.
        title: what a reader sees in the table.
        kind: ``grpc`` (sync), ``grpc_aio``, or ``http``.
        stream_messages: messages per server-streaming RPC (0 = unary); an operation is then one message.
        burn: the handler burns about 1 ms of CPU per call.
        sampler: ``(OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG)`` for both processes, or None (always on).
        full: the sizes of a full run.
        quick: the sizes of a ``--quick`` run.
    """

    key: str
    title: str
    kind: str
    stream_messages: int = 0
    burn: bool = False
    sampler: tuple[str, str] | None = None
    full: Sizes = Sizes(ops=3000, warmup=500)
    quick: Sizes = Sizes(ops=200, warmup=50)

    @property
    def unit(self) -> str:
        """What one operation is."""
        if self.kind == "http":
            return "request"
        return "message" if self.stream_messages else "RPC"


WORKLOADS = (
    Workload("W1", "sync unary echo", "grpc"),
    Workload("W2", "aio unary echo", "grpc_aio"),
    Workload(
        "W3",
        "sync server-streaming, 100 msgs/RPC",
        "grpc",
        stream_messages=100,
        full=Sizes(ops=20000, warmup=2000),
        quick=Sizes(ops=2000, warmup=500),
    ),
    Workload("W4", "httpx → Starlette under uvicorn", "http", full=Sizes(ops=2000, warmup=300)),
    Workload(
        "W5",
        "sync unary, ~1 ms CPU handler, 10 % parent-based sampling",
        "grpc",
        burn=True,
        sampler=("parentbased_traceidratio", "0.1"),
        full=Sizes(ops=800, warmup=100),
        quick=Sizes(ops=60, warmup=20),
    ),
    Workload(
        "W6",
        "sync unary echo, unsampled (parentbased_always_off)",
        "grpc",
        sampler=("parentbased_always_off", ""),
    ),
)


def workload(key: str) -> Workload:
    """The workload named ``key`` (``W1`` .. ``W6``, case-insensitive).

    Raises:
        ValueError: no such workload.
    """
    for item in WORKLOADS:
        if item.key == key.upper():
            return item
    raise ValueError(f"unknown workload {key!r}; known: {', '.join(w.key for w in WORKLOADS)}")
