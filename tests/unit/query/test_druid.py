"""pydruid's connection settings and how its errors become one line (no Druid needed)."""

from __future__ import annotations

from typing import Any

import pytest

from dredge.errors import SinkError
from dredge.query.druid import connect, run
from dredge.query.spec import QuerySpec
from dredge.sinks.druid import DruidConfig


@pytest.mark.parametrize(("tls_verify", "ca_file", "want"), [
    (True, "", True),
    (True, "ca", "ca"),
    (False, "", False),
    (False, "ca", False),  # tls_verify off wins over a CA file
])
def test_connect_passes_tls_and_basic_auth_to_pydruid(
        tmp_path: Any, tls_verify: bool, ca_file: str, want: object) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    config = DruidConfig(url="https://druid.example:9088/base", user="u", password="p",
                         tls_verify=tls_verify, ca_file=str(ca) if ca_file else "")
    conn = connect(config)
    assert conn.url == "https://druid.example:9088/base/druid/v2/sql/"
    assert (conn.user, conn.password) == ("u", "p")
    assert conn.ssl_verify_cert == (str(ca) if want == "ca" else want)


class _Response:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text, self.encoding = status, text, "utf-8"

    def json(self) -> Any:
        raise ValueError("not JSON")


JETTY_401 = """<html>
<head><title>Error 401 User authentication failed.</title></head>
<body><h2>HTTP ERROR 401 User authentication failed.</h2>
<table><tr><th>URI:</th><td>/druid/v2/sql/</td></tr></table>
</body></html>"""


@pytest.mark.parametrize(("status", "page", "want"), [
    (401, JETTY_401, "Druid SQL at https://druid:9088: HTTP 401: user 'u' or its password refused"),
    (403, JETTY_401.replace("401 User authentication failed.", "403 Forbidden"),
     "HTTP 403: user 'u' is not allowed"),
    (404, JETTY_401.replace("401 User authentication failed.", "404 Not Found"),
     "Druid refused the query: HTTP 404 Not Found"),
])
def test_http_errors_from_pydruid_are_one_line(
        monkeypatch: pytest.MonkeyPatch, status: int, page: str, want: str) -> None:
    import requests

    monkeypatch.setattr(requests, "post", lambda *a, **kw: _Response(status, page))
    with pytest.raises(SinkError) as err:
        run(QuerySpec(kind="top", by=("src_app",)),
            DruidConfig(url="https://druid:9088", user="u", password="p"))
    assert want in str(err.value) and "\n" not in str(err.value)


def test_an_untrusted_certificate_says_how_to_trust_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl

    import requests
    import urllib3

    cert = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify "
                                           "failed: self-signed certificate in certificate chain")
    cert.verify_message = "self-signed certificate in certificate chain"
    wrapped = urllib3.exceptions.MaxRetryError(None, "/druid/v2/sql/",  # type: ignore[arg-type]
                                               urllib3.exceptions.SSLError(cert))

    def post(*a: Any, **kw: Any) -> Any:
        raise requests.exceptions.SSLError(wrapped)

    monkeypatch.setattr(requests, "post", post)
    with pytest.raises(SinkError, match=r"TLS certificate not trusted \(self-signed certificate "
                       r"in certificate chain\): give its CA with --druid-ca-file"):
        run(QuerySpec(kind="top", by=("src_app",)), DruidConfig(url="https://druid:9088"))
