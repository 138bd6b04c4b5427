"""The gRPC pieces every part uses: a raw-bytes echo service answering any method, servers, channels, ``setup()``.

Only hoptel's public API is used (``hoptel.setup``, ``hoptel.server_interceptor``, ``hoptel.client_interceptor``),
so the benchmark does not depend on where hoptel keeps its modules.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import grpc

import hoptel

__all__ = [
    "PAYLOAD",
    "SERVICE",
    "Gate",
    "HeldCalls",
    "method_name",
    "open_channel",
    "queue_length",
    "rss_kib",
    "serve",
    "setup_env",
    "telemetry",
    "unary",
]

if TYPE_CHECKING:
    _GenericRpcHandler = grpc.GenericRpcHandler[bytes, bytes]
else:
    _GenericRpcHandler = grpc.GenericRpcHandler

SERVICE = "hoptel.bench.Memory"
PAYLOAD = b"x" * 64


def unary(channel: grpc.Channel, name: str) -> Any:
    """The raw-bytes unary callable of ``name`` (a method of ``SERVICE``) on ``channel``."""
    return channel.unary_unary(method_name(name), request_serializer=None, response_deserializer=None)


def method_name(name: str) -> str:
    """The full method name of ``name`` in the benchmark's service: ``/hoptel.bench.Memory/<name>``."""
    return f"/{SERVICE}/{name}"


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process in KiB, from ``VmRSS`` in ``/proc/<pid>/status`` (Linux).

    Raises:
        RuntimeError: the line is missing (not Linux, or a process that is gone).
    """
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def setup_env(
    endpoint: str, *, sampler: str = "always_on", ratio: float = 1.0, hold_spans: bool = False
) -> dict[str, str]:
    """The environment ``hoptel.setup(environ=...)`` reads: OTLP/gRPC to ``endpoint``, the given sampler.

    ``hold_spans`` makes the batch queue keep every finished span: a 1,000,000-span queue that exports only when the
    whole of it is one batch, or after an hour.
    """
    env = {
        "OTEL_SERVICE_NAME": "memory-bench",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": sampler,
        "OTEL_TRACES_SAMPLER_ARG": str(ratio),
        "HOPTEL_METRICS_ADDR": "127.0.0.1:0",
        "HOPTEL_SIGNALS": "false",
    }
    if hold_spans:
        env |= {
            "OTEL_BSP_MAX_QUEUE_SIZE": "1000000",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000000",
            "OTEL_BSP_SCHEDULE_DELAY": "3600000",
        }
    return env


@contextmanager
def telemetry(environ: Mapping[str, str]) -> Iterator[hoptel.Telemetry]:
    """``hoptel.setup(environ=environ)`` for the duration of the block, shut down after."""
    tel = hoptel.setup(environ=environ, keep_log_handlers=True)
    try:
        yield tel
    finally:
        tel.shutdown(timeout=5.0)


def queue_length(tel: hoptel.Telemetry) -> int:
    """Spans in the batch queue, as hoptel's own ``hoptel_span_queue_length`` gauge reports it."""
    value = tel.registry.get_sample_value("hoptel_span_queue_length")
    return int(value or 0)


class Gate:
    """Holds handlers until ``release()``; counts how many are waiting, so a caller can wait for K of them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._waiting = 0

    def close(self) -> None:
        """From now on, handlers wait in the gate."""
        with self._cond:
            self._open = False

    def release(self) -> None:
        """Let every waiting handler (and later ones) through."""
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def pass_through(self) -> None:
        """What a handler calls: returns at once when the gate is open, else when it is released."""
        with self._cond:
            self._waiting += 1
            self._cond.notify_all()
            try:
                while not self._open:
                    self._cond.wait()
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        """Block until ``n`` handlers are waiting in the gate.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._waiting >= n, timeout):
                raise TimeoutError(f"{self._waiting} of {n} handlers arrived in {timeout} s")


class _AnyMethod(_GenericRpcHandler):
    """Answers every unary method of ``SERVICE`` by echoing the request bytes, after the gate (when there is one)."""

    def __init__(self, gate: Gate | None) -> None:
        self._gate = gate

        def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
            if self._gate is not None:
                self._gate.pass_through()
            return request

        self._handler = grpc.unary_unary_rpc_method_handler(echo)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        method: str = handler_call_details.method
        return self._handler if method.startswith(f"/{SERVICE}/") else None


@contextmanager
def serve(tel: hoptel.Telemetry | None, *, threads: int = 4, gate: Gate | None = None) -> Iterator[str]:
    """A sync ``grpc.server`` on 127.0.0.1 (ephemeral port) with ``hoptel.server_interceptor()`` when ``tel`` is given.

    Yields:
        The target, ``127.0.0.1:PORT``.
    """
    interceptors = [hoptel.server_interceptor(tel)] if tel is not None else []
    pool = futures.ThreadPoolExecutor(max_workers=threads)
    server = grpc.server(pool, handlers=[_AnyMethod(gate)], interceptors=interceptors)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        if gate is not None:
            gate.release()
        server.stop(None).wait()
        pool.shutdown(wait=True)


@contextmanager
def open_channel(target: str, tel: hoptel.Telemetry | None) -> Iterator[grpc.Channel]:
    """An insecure channel to ``target``, through ``hoptel.client_interceptor(target=)`` when ``tel`` is given."""
    channel = grpc.insecure_channel(target)
    try:
        if tel is None:
            yield channel
        else:
            yield grpc.intercept_channel(channel, hoptel.client_interceptor(tel, target=target))
    finally:
        channel.close()


class HeldCalls:
    """K unary calls started with ``.future()``; ``result()`` waits for all of them."""

    def __init__(self, call: Callable[..., Any], k: int) -> None:
        self.futures = [call.future(PAYLOAD) for _ in range(k)]  # type: ignore[attr-defined]

    def result(self, timeout: float = 60.0) -> None:
        for future in self.futures:
            future.result(timeout=timeout)
