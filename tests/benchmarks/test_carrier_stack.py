"""The benchmark's ``carrier`` variant: a real RPC carries its fixed trace header, and nothing else is instrumented."""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc
import pytest

from benchmarks.overhead.spec import ALL_VARIANTS, ECHO_SERVICE, PAYLOAD, UNARY_METHOD
from benchmarks.overhead.stacks import CarrierStack, build_stack


def test_the_carrier_sends_one_traceparent_through_a_real_server() -> None:
    seen: list[tuple[tuple[str, Any], ...]] = []

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        seen.append(tuple((entry.key, entry.value) for entry in context.invocation_metadata()))
        return request

    stack = build_stack("carrier", "bench-test")
    assert isinstance(stack, CarrierStack)
    assert "carrier" in ALL_VARIANTS
    handler = grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Unary": grpc.unary_unary_rpc_method_handler(unary)})
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=2), handlers=[handler], interceptors=stack.grpc_server_interceptors()
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = stack.grpc_channel(f"127.0.0.1:{port}")
    try:
        call = channel.unary_unary(UNARY_METHOD, request_serializer=None, response_deserializer=None)
        assert call(PAYLOAD, metadata=(("ignored", "by-the-carrier"),)) == PAYLOAD
    finally:
        channel.close()
        server.stop(grace=None).wait()
    (metadata,) = seen
    sent = [(key, value) for key, value in metadata if not key.startswith(("user-agent", "grpc-"))]
    assert sent == [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")]


def test_the_carrier_refuses_workloads_it_does_not_measure() -> None:
    stack = CarrierStack()
    with pytest.raises(ValueError, match="sync gRPC workloads only"):
        stack.aio_server_interceptors()
    with pytest.raises(ValueError, match="sync gRPC workloads only"):
        stack.wrap_asgi(object())
