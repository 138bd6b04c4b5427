"""Pure helpers of the HTTP integrations: header allow-lists and route templates from ASGI scopes."""

from __future__ import annotations

import doctest
from types import ModuleType
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.routing import Route

from hoptel.interceptors import headers as http_headers
from hoptel.interceptors.headers import HeaderAllowList
from hoptel.interceptors.http import asgi, httpx_transport
from hoptel.interceptors.http.asgi import route_template
from hoptel.interceptors.http.names import NEVER_RECORDED_HEADERS

NEVER = sorted(NEVER_RECORDED_HEADERS)


def test_allow_list_normalises_names_and_drops_credentials() -> None:
    """Names are stripped, lower-cased, de-duplicated and sorted; credential headers are removed."""
    allow = HeaderAllowList("http.request.header", [" X-B ", "x-a", "X-A", "Authorization", "COOKIE", ""])
    assert allow.names == ("x-a", "x-b")
    assert bool(allow)
    assert not HeaderAllowList("http.request.header", ())
    assert not HeaderAllowList("http.request.header", ["set-cookie", "proxy-authorization"])


def test_from_headers_reads_every_value_of_an_httpx_header() -> None:
    """Httpx headers: every occurrence of an allowed header, in order, under its attribute name."""
    allow = HeaderAllowList("http.response.header", ["x-a", "x-missing"])
    headers = httpx.Headers([("X-A", "1"), ("x-a", "2"), ("x-b", "3")])
    assert allow.from_headers(headers) == {"http.response.header.x-a": ["1", "2"]}


def test_from_pairs_reads_asgi_byte_pairs_in_any_case() -> None:
    """ASGI byte pairs: names match case-insensitively, values decode as latin-1."""
    allow = HeaderAllowList("http.request.header", ["x-a"])
    pairs = [(b"x-a", b"1"), (b"X-A", b"caf\xe9"), (b"x-b", b"3")]
    assert allow.from_pairs(pairs) == {"http.request.header.x-a": ["1", "café"]}


@given(
    listed=st.lists(st.sampled_from([*NEVER, "x-a", "x-b"]), max_size=8),
    sent=st.lists(
        st.tuples(st.sampled_from([*NEVER, "x-a", "x-c"]), st.text(alphabet="ab1 =", max_size=5)), max_size=8
    ),
)
def test_never_recorded_headers_are_never_recorded(listed: list[str], sent: list[tuple[str, str]]) -> None:
    """Whatever the allow-list and the headers, no credential header ever becomes an attribute."""
    allow = HeaderAllowList("http.request.header", [name.upper() for name in listed])
    pairs = [(name.encode(), value.encode()) for name, value in sent]
    for attributes in (allow.from_pairs(pairs), allow.from_headers(httpx.Headers(sent))):
        assert all(key.rpartition(".")[2] not in NEVER_RECORDED_HEADERS for key in attributes)
        assert set(attributes) <= {f"http.request.header.{name}" for name in listed}


async def _endpoint(scope: Any, receive: Any, send: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({"route": Route("/items/{item_id}", _endpoint)}, "/items/{item_id}"),
        ({"route": "/orders/{id}"}, "/orders/{id}"),
        ({"path_format": "/users/{user_id}"}, "/users/{user_id}"),
        ({"route": "", "path_format": "/users/{user_id}"}, "/users/{user_id}"),
        ({"route": object(), "path": "/raw/1"}, None),
        ({"path": "/raw/1"}, None),
    ],
)
def test_route_template_from_scope(scope: dict[str, Any], expected: str | None) -> None:
    """The template comes from scope["route"].path, scope["route"] or scope["path_format"]; never the raw path."""
    assert route_template(scope) == expected


@pytest.mark.parametrize("module", [http_headers, asgi, httpx_transport], ids=lambda module: module.__name__)
def test_module_doctests_pass(module: ModuleType) -> None:
    """The examples in the HTTP modules' docstrings run as written."""
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
