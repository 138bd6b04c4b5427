"""Extra metric labels taken from each call (a tenant from metadata, ...), with a cap on distinct values per label.

>>> tenant = ExtraLabels(["tenant"], lambda call: {"tenant": call.get("x-tenant")}, max_values=2)
>>> [tenant.admit("tenant", value) for value in ("a", "b", "c", "a")]
['a', 'b', 'other', 'a']

A factory given ``extra_labels=ExtraLabels(...)`` counts its calls in series that carry the extra labels after the
usual ones: ``grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code,tenant}``. Label names are
fixed when the option is built; the function runs once per call, on the call's request view (a
:class:`~hoptel.interceptors.hooks.GrpcCall` or :class:`~hoptel.interceptors.hooks.HttpCall`), and returns a small
dict. A label it leaves out (or sets to None) is ``""``; past ``max_values`` distinct (non-empty) values of one
label, new values are counted under ``other``, so a client sending a new tenant per request adds at most
``max_values + 2`` values per label (with ``""`` and ``other``). A function that raises is counted in
``hoptel_hook_errors_total`` and its labels are ``""`` for that call.

The families: label names are fixed per metric family, and a family is registered once per registry. Calls of
factories with extra labels are therefore kept in families of their own (same name, base labels plus the extra
names), and the base family is re-registered as one collector that also renders those series, so each metric name
is still exposed once, with one ``HELP``/``TYPE``. Each call is counted in exactly one series (with or without the
extra labels), so sums across series stay exact. Nothing changes for a registry until the first factory with extra
labels is built.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from hoptel.coded_histogram import merge_parts
from hoptel.metrics import Counter, Histogram

__all__ = [
    "DEFAULT_MAX_VALUES",
    "MAX_VALUE_LENGTH",
    "OTHER",
    "RESERVED_LABELS",
    "ExtraLabels",
    "extend_family",
]

OTHER = "other"
"""The value every label value past the cap is counted under."""
DEFAULT_MAX_VALUES = 100
MAX_VALUE_LENGTH = 128
"""Longer label values are cut to this many characters."""

# Names the built-in families already use (or Prometheus reserves); an extra label may not take them.
RESERVED_LABELS = frozenset(
    {
        "grpc_type",
        "grpc_service",
        "grpc_method",
        "grpc_code",
        "http_request_method",
        "server_address",
        "http_response_status_code",
        "error_type",
        "http_route",
        "le",
        "quantile",
        "job",
        "instance",
    }
)
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_V = TypeVar("_V", contravariant=True)  # a function of any call view can label a narrower one
Family = Counter | Histogram


class _Cap:
    """The distinct values admitted for one label; past ``limit`` new ones become ``other``."""

    __slots__ = ("_lock", "_seen", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value

    def __len__(self) -> int:
        return len(self._seen)


class ExtraLabels(Generic[_V]):
    """The ``extra_labels=`` option: label names, the function that fills them per call, the cap.

    Args:
        names: The extra label names, fixed from now on (valid Prometheus names, none a built-in label).
        function: Called once per call with its request view; returns ``{name: value}`` (values are turned into
            strings; missing or None values are ``""``; keys not in ``names`` are ignored).
        max_values: The most distinct values kept per label; later new values are counted under ``other``.

    Raises:
        ValueError: a bad, reserved or repeated label name, or ``max_values < 1``.
        TypeError: ``names`` is a single string, or ``function`` is not callable.

    Example:
        >>> tenant = ExtraLabels(["tenant"], lambda call: {"tenant": call.get("x-tenant")})
        >>> interceptor = hoptel.server_interceptor(extra_labels=tenant)  # doctest: +SKIP
    """

    __slots__ = ("_caps", "function", "max_values", "names")

    def __init__(
        self,
        names: Sequence[str],
        function: Callable[[_V], Mapping[str, object]],
        *,
        max_values: int = DEFAULT_MAX_VALUES,
    ) -> None:
        if isinstance(names, str):
            raise TypeError(f"names must be a sequence of label names, not the string {names!r}")
        names = tuple(names)
        if not names:
            raise ValueError("ExtraLabels needs at least one label name")
        for name in names:
            if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"not a valid Prometheus label name: {name!r}")
            if name in RESERVED_LABELS:
                raise ValueError(f"label name {name!r} is already used by hoptel's metrics")
        if len(set(names)) != len(names):
            raise ValueError(f"repeated label name in {names!r}")
        if not callable(function):
            raise TypeError(f"ExtraLabels needs a callable, got {type(function).__name__}")
        if max_values < 1:
            raise ValueError(f"max_values must be at least 1, got {max_values}")
        self.names: tuple[str, ...] = names
        self.function = function
        self.max_values = max_values
        self._caps = {name: _Cap(max_values) for name in names}

    def admit(self, name: str, value: object) -> str:
        """``value`` as the label value it is counted under: text, cut to length, or ``other`` past the cap.

        ``""`` (also for None) is always admitted and not counted against the cap.
        """
        if value is None or value == "":
            return ""
        text = value if isinstance(value, str) else str(value)
        if len(text) > MAX_VALUE_LENGTH:
            text = text[:MAX_VALUE_LENGTH]
        return self._caps[name].admit(text)

    def values(self, labels: Mapping[str, object] | None) -> tuple[str, ...]:
        """The label values, in ``names`` order, for what the function returned (None: all ``""``)."""
        if not labels:
            return tuple(self.admit(name, None) for name in self.names)
        return tuple(self.admit(name, labels.get(name)) for name in self.names)

    def distinct_values(self, name: str) -> int:
        """How many distinct values of label ``name`` are kept so far (``other`` not included)."""
        return len(self._caps[name])

    def __repr__(self) -> str:
        return f"ExtraLabels({list(self.names)!r}, {self.function!r}, max_values={self.max_values})"


class _MergedFamily:
    """Registered in place of a base family: renders it and every extension of it as one metric family."""

    def __init__(self, base: Family) -> None:
        self.base = base
        self.extensions: list[Family] = []

    def describe(self) -> Iterable[Metric]:
        return self.base.describe()

    def collect(self) -> Iterable[Metric]:
        (family,) = self.base.collect()
        for extension in list(self.extensions):
            for metric in extension.collect():
                family.samples.extend(metric.samples)
                merge_parts(family, metric)  # a coded histogram's per-status parts (hoptel.coded_histogram)
        return [family]


class _Extensions:
    """One registry's merged families and their extensions, keyed by base family and extra names."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self._merged: dict[Family, _MergedFamily] = {}
        self._families: dict[tuple[Family, tuple[str, ...]], Family] = {}

    def extend(self, base: Family, names: tuple[str, ...]) -> Family:
        key = (base, names)
        with self._lock:
            family = self._families.get(key)
            if family is not None:
                return family
            merged = self._merged.get(base)
            if merged is None:
                merged = _MergedFamily(base)
                self._registry.unregister(base)
                self._registry.register(merged)
                self._merged[base] = merged
            labelnames = (*base.labelnames, *names)
            if isinstance(base, Histogram):  # same kind and buckets as the base (HOPTEL_GRPC_BUCKETS / _HTTP_)
                family = type(base)(base.name, base.documentation, labelnames, buckets=base.buckets)
            else:
                family = Counter(base.name, base.documentation, labelnames)
            merged.extensions.append(family)
            self._families[key] = family
            return family


_extensions: weakref.WeakKeyDictionary[CollectorRegistry, _Extensions] = weakref.WeakKeyDictionary()
_extensions_lock = threading.Lock()


def extend_family(registry: CollectorRegistry, base: Family, names: tuple[str, ...]) -> Family:
    """The family that counts ``base``'s series with ``names`` appended, exposed under ``base``'s name.

    The first call for a registry re-registers ``base`` as a collector that renders ``base`` and all its
    extensions together; the same (base, names) always gets the same family.
    """
    with _extensions_lock:
        extensions = _extensions.get(registry)
        if extensions is None:
            extensions = _extensions[registry] = _Extensions(registry)
    return extensions.extend(base, names)
