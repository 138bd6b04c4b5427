"""What hoptel exposes: the metrics endpoint stays on loopback by default, mTLS refuses anonymous scrapers.

The endpoint module's own tests (tests/endpoint/test_endpoint_http.py, test_endpoint_tls.py) cover the server in
depth; these two check the same promises end to end, through ``hoptel.setup()``'s defaults and settings.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trustme

import hoptel
from hoptel.config import Config

CLIENT_TIMEOUT_S = 10.0


def _non_loopback_ipv4() -> str | None:
    """This machine's outgoing IPv4 address (a UDP connect sends nothing), or None when it has only loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_default_metrics_endpoint_is_not_reachable_from_outside(
    make_telemetry: Callable[..., hoptel.Telemetry],
) -> None:
    """setup()'s default metrics host is loopback: served on 127.0.0.1, refused on this machine's other address."""
    default = Config.load({}, "exposure", {}).metrics_addr
    assert default is not None
    outside = _non_loopback_ipv4()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # The default host with port 0, so the test does not depend on 9464 being free.
    tel = make_telemetry("exposure", traces_exporter="none", metrics_addr=f"{default.host}:0")
    assert tel.metrics_url is not None
    port = urlsplit(tel.metrics_url).port
    assert port is not None
    assert httpx.get(tel.metrics_url, timeout=CLIENT_TIMEOUT_S).status_code == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((outside, port), timeout=CLIENT_TIMEOUT_S).close()


def test_mtls_metrics_endpoint_refuses_a_client_without_certificate(
    make_telemetry: Callable[..., hoptel.Telemetry], tmp_path: Path
) -> None:
    """With HOPTEL_METRICS_TLS_CLIENT_CA set, a scraper without a client certificate gets no metrics."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("scraper@example.test")
    cert, key, ca_file, client_pem = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem", "client.pem"))
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(client_pem))
    tel = make_telemetry(
        "mtls",
        traces_exporter="none",
        metrics_addr="127.0.0.1:0",
        metrics_tls_cert=str(cert),
        metrics_tls_key=str(key),
        metrics_tls_client_ca=str(ca_file),
    )
    assert tel.metrics_url is not None
    assert tel.metrics_url.startswith("https://")

    anonymous = ssl.create_default_context(cafile=str(ca_file))
    with pytest.raises((ssl.SSLError, httpx.HTTPError, ConnectionError)):
        httpx.get(tel.metrics_url, verify=anonymous, timeout=CLIENT_TIMEOUT_S)

    identified = ssl.create_default_context(cafile=str(ca_file))
    identified.load_cert_chain(str(client_pem))
    response = httpx.get(tel.metrics_url, verify=identified, timeout=CLIENT_TIMEOUT_S)
    assert response.status_code == 200
    assert "hoptel_spans_dropped_total" in response.text
