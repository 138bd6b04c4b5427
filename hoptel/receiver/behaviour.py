"""How the receiver answers: normally, late, or with a retryable refusal (for reliability tests).

``Behaviour`` is the one knob both transports consult per export request. A refusal maps to the code each
protocol uses for it: ``"unavailable"`` is gRPC ``UNAVAILABLE`` / HTTP 503, ``"resource_exhausted"`` is gRPC
``RESOURCE_EXHAUSTED`` / HTTP 429; both carry the retry delay when one is set (gRPC ``RetryInfo``, HTTP
``Retry-After``). A refused request is counted but its data is not stored, as a real collector would drop it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Literal

import grpc

__all__ = ["STOPPING", "Behaviour", "FailureStatus", "Refusal"]

FailureStatus = Literal["unavailable", "resource_exhausted"]
"""The refusals ``OTLPReceiver.fail_with`` knows."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """How to turn one export request away.

    Attributes:
        grpc_code: The gRPC status to answer with.
        http_status: The HTTP status to answer with; ``None`` drops the connection without an answer.
        message: The status message.
        retry_after_s: The retry delay to advertise, or ``None``.
    """

    grpc_code: grpc.StatusCode
    http_status: int | None
    message: str
    retry_after_s: float | None = None

    def retry_after_header(self) -> str | None:
        """Return the HTTP ``Retry-After`` value (whole seconds, rounded up), or ``None``."""
        if self.retry_after_s is None:
            return None
        return str(max(0, math.ceil(self.retry_after_s)))


STOPPING = Refusal(grpc.StatusCode.UNAVAILABLE, None, "hoptel receiver is stopping")
"""Answer for a request still in flight when the receiver stops: as if the collector went away."""

_REFUSALS: dict[str, tuple[grpc.StatusCode, int]] = {
    "unavailable": (grpc.StatusCode.UNAVAILABLE, 503),
    "resource_exhausted": (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
}


class Behaviour:
    """The receiver's current failure mode and answer delay; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refusal: Refusal | None = None
        self._remaining: int | None = None  # refusals left before answering normally again; None = forever
        self.delay_s = 0.0

    @property
    def delay_s(self) -> float:
        """Seconds to wait before handling each export request (0 = answer at once)."""
        return self._delay_s

    @delay_s.setter
    def delay_s(self, value: float) -> None:
        if not value >= 0:  # also rejects NaN
            raise ValueError(f"delay_s must be >= 0, got {value!r}")
        self._delay_s = float(value)

    def fail_with(
        self, status: FailureStatus | None, retry_after_s: float | None = None, times: int | None = None
    ) -> None:
        """Refuse the next export requests, or answer normally again.

        Args:
            status: ``"unavailable"``, ``"resource_exhausted"``, or ``None`` to stop refusing.
            retry_after_s: The retry delay to advertise with each refusal, or ``None`` for none.
            times: Refuse only this many requests, then answer normally; ``None`` refuses until changed.

        Raises:
            ValueError: An unknown status, a negative delay, or ``times < 1``.
        """
        if status is None:
            with self._lock:
                self._refusal, self._remaining = None, None
            return
        if status not in _REFUSALS:
            raise ValueError(f"unknown failure status {status!r}; expected one of {sorted(_REFUSALS)} or None")
        if retry_after_s is not None and not retry_after_s >= 0:
            raise ValueError(f"retry_after_s must be >= 0, got {retry_after_s!r}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times!r}")
        grpc_code, http_status = _REFUSALS[status]
        refusal = Refusal(grpc_code, http_status, f"hoptel receiver: {status} (set by fail_with)", retry_after_s)
        with self._lock:
            self._refusal, self._remaining = refusal, times

    def admit(self, stopping: threading.Event) -> Refusal | None:
        """Decide one export request's fate, after the configured delay.

        Args:
            stopping: Set when the receiver stops; it cuts the delay short.

        Returns:
            ``None`` to handle the request, or the ``Refusal`` to answer with.
        """
        delay = self._delay_s
        if (delay > 0 and stopping.wait(delay)) or stopping.is_set():
            return STOPPING
        with self._lock:
            refusal = self._refusal
            if refusal is not None and self._remaining is not None:
                self._remaining -= 1
                if self._remaining == 0:
                    self._refusal, self._remaining = None, None
            return refusal
