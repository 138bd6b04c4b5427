"""A sync gRPC channel that records every RPC without grpcio's interceptor machinery.

>>> channel = hoptel.instrument_channel(grpc.insecure_channel(target), target=target)     # doctest: +SKIP

The hops are those of ``grpc.intercept_channel(channel, hoptel.client_interceptor(target=target))``: one CLIENT
span and one latency observation per RPC, all four shapes, the same options. What differs is the path of a
call: each method's route is resolved once, when the stub asks the channel for the method, and a call goes
straight to grpcio's own multicallable with the injected metadata. grpcio's ``intercept_channel`` instead builds
a ``ClientCallDetails``, a continuation closure and a new multicallable on every call; skipping that is most of
what this saves. A filtered-out method gets grpcio's multicallable itself: no cost at all.

The caller gets what grpcio returns: the response (``__call__``), ``(response, call)`` (``with_call``), the
future (``future()``), or for a response stream a ``grpc.Call`` iterator that counts responses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from hoptel.interceptors.grpc.client_engine import multicallables
from hoptel.interceptors.grpc.client_response import ClientResponseCapture, client_response_capture
from hoptel.interceptors.grpc.shared import RecordingMethods, client_recording

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from hoptel.interceptors.grpc.shared import GrpcClientOptions
    from hoptel.telemetry import Telemetry

__all__ = ["InstrumentedChannel", "instrument_channel"]


class InstrumentedChannel(RecordingMethods, grpc.Channel):
    """A ``grpc.Channel`` recording every RPC made through it; build it with :func:`instrument_channel`.

    Connectivity (``subscribe``, ``unsubscribe``), ``close()`` and the context manager act on the wrapped channel.
    """

    wrappers = multicallables  # the engine's methods, as grpcio multicallables

    def subscribe(self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False) -> None:
        """See ``grpc.Channel.subscribe``."""
        self._channel.subscribe(callback, try_to_connect=try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        """See ``grpc.Channel.unsubscribe``."""
        self._channel.unsubscribe(callback)

    def close(self) -> None:
        """Close the wrapped channel."""
        self._channel.close()

    def __enter__(self) -> InstrumentedChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._channel.close()


class _CapturingChannel(InstrumentedChannel):
    """An instrumented channel recording the response metadata of every RPC (built only when asked for)."""

    _capture: ClientResponseCapture

    def _multicallable(self, index: int, inner: Any) -> Any:
        """Grpc's multicallables report their calls (unary responses) or streams (response streams) to the capture."""
        return self._capture.multicallable(inner) if index in (0, 2) else self._capture.stream_multicallable(inner)


def instrument_channel(
    channel: grpc.Channel,
    telemetry: Telemetry | None = None,
    **options: Unpack[GrpcClientOptions],
) -> InstrumentedChannel:
    """``channel``, recording every RPC: the hops of :func:`~hoptel.client_interceptor` at a lower cost per call.

    Args:
        channel: A sync channel (``grpc.insecure_channel``, ``grpc.secure_channel``, an intercepted channel).
        telemetry: Where spans and metrics go (default: the latest ``hoptel.setup()``'s). Resolved once, here.
        **options: ``filter``, ``target``, ``request_hook``, ``response_hook``, ``extra_labels``: see
            :class:`~hoptel.interceptors.grpc.shared.GrpcClientOptions`.

    Returns:
        A ``grpc.Channel`` to build stubs on: ``Stub(hoptel.instrument_channel(grpc.insecure_channel(target)))``.
        Under ``hoptel.instrument()`` a zero-code channel steps aside, so each RPC is recorded once.
    """
    from hoptel.interceptors.auto.zerocode import (
        step_aside,  # the zero-code machinery only if channels are instrumented
    )

    recording = client_recording(telemetry, options, client_response_capture)
    kind = InstrumentedChannel if recording.capture is None else _CapturingChannel
    return kind(step_aside(channel), recording)
