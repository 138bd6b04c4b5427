"""Pure helpers for gRPC names: method paths, RPC shapes and status codes, computed once per name.

>>> parse_method_name("/shop.Orders/Get")
('shop.Orders', 'Get')
>>> STATUS[grpc.StatusCode.DEADLINE_EXCEEDED].go_name
'DeadlineExceeded'
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

__all__ = [
    "BIDI_STREAM",
    "CLIENT_STREAM",
    "SERVER_STREAM",
    "STATUS",
    "UNARY",
    "UNKNOWN_METHOD",
    "StatusInfo",
    "parse_method_name",
    "rpc_type",
]

UNARY = "unary"
CLIENT_STREAM = "client_stream"
SERVER_STREAM = "server_stream"
BIDI_STREAM = "bidi_stream"

# The label value every method a server does not implement is counted under, so junk names add one series.
UNKNOWN_METHOD = "unknown"

_RPC_TYPES = {
    (False, False): UNARY,
    (True, False): CLIENT_STREAM,
    (False, True): SERVER_STREAM,
    (True, True): BIDI_STREAM,
}

# Codes a server span reports as an error (OTel RPC semantic conventions); the client errs on any non-OK code.
_SERVER_ERROR_CODES = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}


def rpc_type(request_streaming: bool, response_streaming: bool) -> str:
    """The ``grpc_type`` label for an RPC shape."""
    return _RPC_TYPES[(bool(request_streaming), bool(response_streaming))]


def parse_method_name(full_method: str) -> tuple[str, str]:
    """Split ``/package.Service/Method`` into service and method; anything else is (``unknown``, ``unknown``)."""
    if full_method.startswith("/"):
        service, sep, method = full_method[1:].partition("/")
        if sep and service and method and "/" not in method:
            return service, method
    return UNKNOWN_METHOD, UNKNOWN_METHOD


def _go_name(code: grpc.StatusCode) -> str:
    # go-grpc-middleware spells codes as Go's codes.Code String(): OK, InvalidArgument, DeadlineExceeded, ...
    # and Go spells CANCELLED the American way: "Canceled".
    if code is grpc.StatusCode.OK:
        return "OK"
    if code is grpc.StatusCode.CANCELLED:
        return "Canceled"
    return "".join(part.capitalize() for part in code.name.split("_"))


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """Everything hoptel derives from a status code, computed once per code."""

    code: grpc.StatusCode
    number: int
    name: str
    go_name: str
    server_error: bool
    client_error: bool


STATUS: dict[grpc.StatusCode, StatusInfo] = {
    code: StatusInfo(
        code=code,
        number=code.value[0],
        name=code.name,
        go_name=_go_name(code),
        server_error=code in _SERVER_ERROR_CODES,
        client_error=code is not grpc.StatusCode.OK,
    )
    for code in grpc.StatusCode
}
