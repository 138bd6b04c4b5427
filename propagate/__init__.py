"""Fast trace-context and baggage propagation for gRPC metadata, HTTP headers and ASGI scopes.

W3C Trace Context, W3C Baggage and B3 (single and multi header), chosen by ``OTEL_PROPAGATORS``; contexts are
real OpenTelemetry contexts, so SDK tracers and the official instrumentations interoperate with them.

>>> from hoptel.propagate import propagator_from_env
>>> prop = propagator_from_env(None)  # tracecontext,baggage
>>> ctx = prop.extract_headers({"Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
>>> prop.inject_metadata(None, ctx)
[('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')]
"""

from .b3 import B3Format, parse_b3_multi, parse_b3_single
from .baggage import MAX_BAGGAGE_BYTES, MAX_BAGGAGE_MEMBERS, BaggageFormat, format_baggage, parse_baggage
from .carriers import HeadersCarrier, Metadata, MetadataList
from .composite import DEFAULT_PROPAGATORS, PROPAGATOR_NAMES, Propagator, propagator_from_env
from .textmap import ASGIGetter, HeadersGetter, HeadersSetter, MetadataGetter, MetadataSetter
from .tracecontext import TraceContextFormat, format_traceparent, parse_traceparent, parse_tracestate

__all__ = [
    "DEFAULT_PROPAGATORS",
    "MAX_BAGGAGE_BYTES",
    "MAX_BAGGAGE_MEMBERS",
    "PROPAGATOR_NAMES",
    "ASGIGetter",
    "B3Format",
    "BaggageFormat",
    "HeadersCarrier",
    "HeadersGetter",
    "HeadersSetter",
    "Metadata",
    "MetadataGetter",
    "MetadataList",
    "MetadataSetter",
    "Propagator",
    "TraceContextFormat",
    "format_baggage",
    "format_traceparent",
    "parse_b3_multi",
    "parse_b3_single",
    "parse_baggage",
    "parse_traceparent",
    "parse_tracestate",
    "propagator_from_env",
]
