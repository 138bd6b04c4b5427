"""The variants as one object each: what a worker process installs before it serves or calls.

- ``bare``: nothing.
- ``hoptel``: ``hoptel.setup()`` (OTLP/gRPC export to the benchmark's receiver, metrics endpoint on an
  ephemeral port), hoptel's instrumented channels (``instrument_channel``, ``instrument_aio_channel``), server
  interceptors, transport and middleware.
- ``hoptel_interceptors``: the same with hoptel's client *interceptors* on grpc's interceptor hooks
  (``grpc.intercept_channel``, ``interceptors=`` of a grpc.aio channel) instead of the instrumented channels.
- ``noop``: pass-through hooks of the same kinds (``intercept_channel``, server interceptors, a wrapping httpx
  transport, an ASGI middleware) that record nothing: the floor any instrumentation on those hooks pays.
- ``carrier`` (sync gRPC only): what carrying a trace header costs with no telemetry at all: the server's
  pass-through interceptor of ``noop`` (a grpc server's only public hook) and a channel whose multicallables send one
  fixed ``traceparent`` entry through the thinnest Python wrapper, as an instrumented channel would. The floor of
  any sync gRPC hop that propagates, against which hoptel's own work is the rest.
- ``official``: an SDK ``TracerProvider`` + ``BatchSpanProcessor`` + OTLP/gRPC exporter to the same receiver,
  opentelemetry-instrumentation-grpc (sync and aio), -httpx and -asgi, and py-grpc-prometheus for gRPC metrics
  (with the aio shim of ``prom_aio``).

Both instrumented variants read their configuration (endpoint, sampler, service name) from the same ``OTEL_*``
variables, which the launcher sets identically for both. Each stack is built once per worker process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
import httpx

__all__ = [
    "CarrierStack",
    "HoptelInterceptorsStack",
    "HoptelStack",
    "NoopStack",
    "OfficialStack",
    "Stack",
    "build_stack",
]

ASGIApp = Any
"""An ASGI application (kept loose: Starlette, uvicorn and the middlewares each type it differently)."""


class Stack:
    """The bare variant, and the interface of the instrumented ones: every hook returns "no instrumentation"."""

    name = "bare"

    def grpc_server_interceptors(self) -> list[grpc.ServerInterceptor[Any, Any]]:
        """Interceptors for ``grpc.server(...)``."""
        return []

    def grpc_channel(self, target: str) -> grpc.Channel:
        """A sync channel to ``target``, intercepted as the variant does it."""
        return grpc.insecure_channel(target)

    def aio_server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        """Interceptors for ``grpc.aio.server(...)``."""
        return []

    def aio_channel(self, target: str) -> grpc.aio.Channel:
        """A grpc.aio channel to ``target``, instrumented as the variant does it (create inside the event loop)."""
        return grpc.aio.insecure_channel(target)

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        """The ASGI app with the variant's middleware around it."""
        return app

    def httpx_client(self) -> httpx.Client:
        """A sync httpx client with the variant's instrumentation."""
        return httpx.Client()

    def flush(self) -> None:
        """Export every finished span now, so the CPU it costs falls inside the measured window."""

    def shutdown(self) -> None:
        """Flush and release everything the stack started."""


if TYPE_CHECKING:
    _ServerInterceptor = grpc.ServerInterceptor[Any, Any]
    _AioServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.UnaryStreamClientInterceptor[Any, Any]
    _AioUnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.ServerInterceptor
    _AioServerInterceptor = grpc.aio.ServerInterceptor
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.UnaryStreamClientInterceptor
    _AioUnaryUnary = grpc.aio.UnaryUnaryClientInterceptor


class _PassServer(_ServerInterceptor):
    def intercept_service(self, continuation: Callable[[Any], Any], handler_call_details: Any) -> Any:
        return continuation(handler_call_details)


class _PassClient(_UnaryUnary, _UnaryStream):
    def intercept_unary_unary(self, continuation: Callable[[Any, Any], Any], details: Any, request: Any) -> Any:
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Callable[[Any, Any], Any], details: Any, request: Any) -> Any:
        return continuation(details, request)


class _PassAioServer(_AioServerInterceptor):
    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any) -> Any:
        return await continuation(handler_call_details)


class _PassAioClient(_AioUnaryUnary):
    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(client_call_details, request)


class _PassTransport(httpx.BaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


class NoopStack(Stack):
    """Pass-through hooks that record nothing: what merely being in the call path costs."""

    name = "noop"

    def grpc_server_interceptors(self) -> list[grpc.ServerInterceptor[Any, Any]]:
        return [_PassServer()]

    def grpc_channel(self, target: str) -> grpc.Channel:
        return grpc.intercept_channel(grpc.insecure_channel(target), _PassClient())

    def aio_server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        return [_PassAioServer()]

    def aio_channel(self, target: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(target, interceptors=[_PassAioClient()])

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        async def passthrough(scope: Any, receive: Any, send: Any) -> None:
            await app(scope, receive, send)

        return passthrough

    def httpx_client(self) -> httpx.Client:
        return httpx.Client(transport=_PassTransport())


_TRACEPARENT = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),)


class _CarryingCall:
    """A unary-unary multicallable that sends one fixed trace header and nothing else."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        return self._inner(request, timeout, _TRACEPARENT, credentials, wait_for_ready, compression)


class _CarryingChannel:
    """A sync channel whose unary-unary multicallables carry the header (the only shape the workloads call)."""

    def __init__(self, inner: grpc.Channel) -> None:
        self._inner = inner

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _CarryingCall:
        return _CarryingCall(self._inner.unary_unary(method, *args, **kwargs))

    def close(self) -> None:
        self._inner.close()


class CarrierStack(Stack):
    """A fixed trace header carried through the thinnest wrappers, nothing recorded (sync gRPC workloads only)."""

    name = "carrier"

    def grpc_server_interceptors(self) -> list[grpc.ServerInterceptor[Any, Any]]:
        return [_PassServer()]

    def grpc_channel(self, target: str) -> grpc.Channel:
        return _CarryingChannel(grpc.insecure_channel(target))  # type: ignore[return-value]  # the shape called

    def aio_server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        raise ValueError("the carrier variant measures sync gRPC workloads only (W1, W5, W6)")

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        raise ValueError("the carrier variant measures sync gRPC workloads only (W1, W5, W6)")


class HoptelStack(Stack):
    """hoptel: ``setup()`` from the environment plus its public factories."""

    name = "hoptel"

    def __init__(self, service_name: str) -> None:
        import hoptel

        self._hoptel = hoptel
        self._telemetry = hoptel.setup(service_name)

    def grpc_server_interceptors(self) -> list[grpc.ServerInterceptor[Any, Any]]:
        return [self._hoptel.server_interceptor()]

    def grpc_channel(self, target: str) -> grpc.Channel:
        return self._hoptel.instrument_channel(grpc.insecure_channel(target), target=target)

    def aio_server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        return [self._hoptel.aio_server_interceptor()]

    def aio_channel(self, target: str) -> grpc.aio.Channel:
        return self._hoptel.instrument_aio_channel(grpc.aio.insecure_channel(target), target=target)

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        return self._hoptel.ASGIMiddleware(app)

    def httpx_client(self) -> httpx.Client:
        return httpx.Client(transport=self._hoptel.HTTPTransport())

    def flush(self) -> None:
        self._telemetry.force_flush(timeout=30.0)

    def shutdown(self) -> None:
        self._telemetry.shutdown(timeout=10.0)


class HoptelInterceptorsStack(HoptelStack):
    """hoptel with its client interceptors on grpc's interceptor hooks instead of the instrumented channels."""

    name = "hoptel_interceptors"

    def grpc_channel(self, target: str) -> grpc.Channel:
        interceptor = self._hoptel.client_interceptor(target=target)
        return grpc.intercept_channel(grpc.insecure_channel(target), interceptor)

    def aio_channel(self, target: str) -> grpc.aio.Channel:
        interceptors: Any = self._hoptel.aio_client_interceptor(target=target)  # grpc.aio takes any sequence
        return grpc.aio.insecure_channel(target, interceptors=interceptors)


class OfficialStack(Stack):
    """What a user picks instead: the OpenTelemetry SDK and contrib instrumentations, py-grpc-prometheus."""

    name = "official"

    def __init__(self, service_name: str) -> None:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from prometheus_client import CollectorRegistry

        # Sampler, endpoint and batch settings come from OTEL_* exactly as hoptel reads them.
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(self._provider)
        self._registry = CollectorRegistry()  # one per process, as the default REGISTRY would be

    def grpc_server_interceptors(self) -> list[grpc.ServerInterceptor[Any, Any]]:
        from opentelemetry.instrumentation.grpc import server_interceptor
        from py_grpc_prometheus.prometheus_server_interceptor import (  # type: ignore[import-untyped]  # untyped
            PromServerInterceptor,
        )

        prom = PromServerInterceptor(enable_handling_time_histogram=True, registry=self._registry)
        otel = server_interceptor(tracer_provider=self._provider)  # type: ignore[no-untyped-call]  # contrib: untyped
        return [otel, prom]

    def grpc_channel(self, target: str) -> grpc.Channel:
        from opentelemetry.instrumentation.grpc import client_interceptor
        from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
        from py_grpc_prometheus.prometheus_client_interceptor import (  # type: ignore[import-untyped]  # untyped
            PromClientInterceptor,
        )

        prom = PromClientInterceptor(enable_client_handling_time_histogram=True, registry=self._registry)
        # What GrpcInstrumentorClient does to every channel: OTel's own intercept_channel, outermost.
        otel = client_interceptor(tracer_provider=self._provider)  # type: ignore[no-untyped-call]  # untyped
        inner = grpc.intercept_channel(grpc.insecure_channel(target), prom)
        channel: grpc.Channel = intercept_channel(inner, otel)  # type: ignore[no-untyped-call]  # untyped
        return channel

    def aio_server_interceptors(self) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
        from opentelemetry.instrumentation.grpc import aio_server_interceptor

        from benchmarks.overhead.prom_aio import PromAioServerInterceptor

        otel = aio_server_interceptor(tracer_provider=self._provider)  # type: ignore[no-untyped-call]  # untyped
        return [otel, PromAioServerInterceptor(self._registry)]

    def aio_channel(self, target: str) -> grpc.aio.Channel:
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        from benchmarks.overhead.prom_aio import PromAioClientInterceptor

        otel: list[Any] = aio_client_interceptors(tracer_provider=self._provider)  # type: ignore[no-untyped-call]
        return grpc.aio.insecure_channel(target, interceptors=[*otel, PromAioClientInterceptor(self._registry)])

    def wrap_asgi(self, app: ASGIApp) -> ASGIApp:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(app, tracer_provider=self._provider)

    def httpx_client(self) -> httpx.Client:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        client = httpx.Client()
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self._provider)
        return client

    def flush(self) -> None:
        self._provider.force_flush(timeout_millis=30_000)

    def shutdown(self) -> None:
        self._provider.shutdown()


def build_stack(variant: str, service_name: str) -> Stack:
    """The stack for ``variant`` (one of ``spec.ALL_VARIANTS``), built here.

    Raises:
        ValueError: an unknown variant.
    """
    if variant == "bare":
        return Stack()
    if variant == "hoptel":
        return HoptelStack(service_name)
    if variant == "official":
        return OfficialStack(service_name)
    if variant == "noop":
        return NoopStack()
    if variant == "hoptel_interceptors":
        return HoptelInterceptorsStack(service_name)
    if variant == "carrier":
        return CarrierStack()
    raise ValueError(f"unknown variant {variant!r}")
