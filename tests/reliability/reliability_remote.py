"""An OTLPReceiver in a separate (spawned) process, for tests that fork.

gRPC cannot be used in a child forked while another thread of the parent is inside a gRPC call. An in-process
receiver's gRPC server is always inside one, so a fork test with it would test the receiver, not hoptel. This one
runs in its own process and answers questions over a pipe.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

__all__ = ["RemoteReceiver", "SpanSummary"]

SpanSummary = tuple[str, str, Any]
"""What the remote receiver reports per span: ``(name, span_id, attributes["rel.pid"])``."""

_STARTUP_TIMEOUT_S = 30.0


def _serve(conn: Connection) -> None:
    """Runs in the spawned process: start a receiver, then answer ``("spans", prefix, n, timeout)`` until "stop"."""
    from hoptel.receiver import OTLPReceiver, ReceivedSpan

    with OTLPReceiver() as receiver:
        conn.send((receiver.grpc_endpoint, receiver.http_endpoint))
        while True:
            command = conn.recv()
            if command[0] != "spans":
                return
            _, prefix, n, timeout = command

            def named(span: ReceivedSpan, prefix: str = prefix) -> bool:
                return span.name.startswith(prefix)

            try:
                spans = receiver.wait_for_spans(n, timeout=timeout, predicate=named)
            except TimeoutError:
                spans = [span for span in receiver.spans() if named(span)]
            conn.send([(span.name, span.span_id, span.attributes.get("rel.pid")) for span in spans])


class RemoteReceiver:
    """A receiver in a spawned process; use as a context manager."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_conn,), name="remote-receiver", daemon=True)
        self.grpc_endpoint = ""
        self.http_endpoint = ""

    def __enter__(self) -> RemoteReceiver:
        self._process.start()
        if not self._conn.poll(_STARTUP_TIMEOUT_S):
            self._process.kill()
            raise RuntimeError("the remote receiver did not start")
        self.grpc_endpoint, self.http_endpoint = self._conn.recv()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._conn.send(("stop",))
        finally:
            self._process.join(_STARTUP_TIMEOUT_S)
            if self._process.is_alive():
                self._process.kill()
            self._conn.close()

    def endpoint(self, protocol: str) -> str:
        """The endpoint for ``protocol`` (``grpc`` or ``http/protobuf``)."""
        return self.grpc_endpoint if protocol == "grpc" else self.http_endpoint

    def spans(self, prefix: str, n: int, timeout: float) -> list[SpanSummary]:
        """Wait (at most ``timeout`` s) until ``n`` spans named ``prefix...`` arrived; return those there are."""
        self._conn.send(("spans", prefix, n, timeout))
        if not self._conn.poll(timeout + _STARTUP_TIMEOUT_S):
            raise TimeoutError("the remote receiver did not answer")
        summaries: list[SpanSummary] = self._conn.recv()
        return summaries
