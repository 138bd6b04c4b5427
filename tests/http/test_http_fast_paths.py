"""The HTTP hop's fast paths give what the general code gives (hypothesis, as for propagation's fast paths)."""

from __future__ import annotations

import httpx
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hoptel.interceptors.http.names import redact_url, redact_url_general

_URL_CHARS = st.sampled_from(list("aZ09-._~:/?#[]@!$&'()*+,;=% \t\r\n\x00é/?&="))
_PREFIXES = st.sampled_from(["http://", "https://", "HTTP://", "http:", "http:/", "https:///", "ftp://", "", "//"])


@settings(max_examples=2000, deadline=None)
@given(_PREFIXES, st.text(_URL_CHARS, max_size=40))
@example("http://", "")
@example("http://", "?")
@example("https://", "h?")
@example("http://", "//x")
@example("http://", "h:99999/p?a=1&b&=c")
@example("http://", "u:p@h/p?a=1")
@example("http://", "[::1]:80/p?x=1")
@example("http://", "h/p?a=1#f")
def test_redact_url_fast_path_matches_urlsplit(prefix: str, rest: str) -> None:
    url = prefix + rest
    assert redact_url(url) == redact_url_general(url)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["http", "https"]),
    st.sampled_from(["example.com", "example.com:8443", "user:pw@example.com", "127.0.0.1:8000", "[::1]:9000"]),
    st.text(st.sampled_from(list("az09/-_.~%é ")), max_size=20),
    st.dictionaries(st.text("abc", min_size=1, max_size=3), st.text("xyz &=é", max_size=4), max_size=3),
)
def test_redact_url_fast_path_matches_urlsplit_for_httpx_urls(
    scheme: str, host: str, path: str, params: dict[str, str]
) -> None:
    url = str(httpx.URL(f"{scheme}://{host}/{path}", params=params))
    assert redact_url(url) == redact_url_general(url)


def test_asgi_address_attributes_cached_per_connection_and_built_for_lists() -> None:
    from hoptel.interceptors.recorder import _asgi_attributes

    expected = {
        "url.path": "/a",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "server.address": "10.0.0.1",
        "server.port": 80,
        "client.address": "10.0.0.2",
        "network.peer.address": "10.0.0.2",
    }
    as_lists = {"path": "/a", "server": ["10.0.0.1", 80], "client": ["10.0.0.2", None]}  # unhashable: not cached
    as_tuples = {"path": "/a", "server": ("10.0.0.1", 80), "client": ("10.0.0.2", None)}
    assert _asgi_attributes(as_lists) == expected
    assert _asgi_attributes(as_tuples) == expected
    second = _asgi_attributes({**as_tuples, "path": "/b"})  # the cached address part, a new dict
    assert second == {**expected, "url.path": "/b"}
    assert _asgi_attributes({"path": "/c"}) == {
        "url.path": "/c",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
    }
