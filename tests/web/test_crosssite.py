"""Which state-changing requests count as cross-site, and which bodies are refused."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from twisted.web.http_headers import Headers

from stowpair.web.crosssite import cross_site_problem, simple_body_problem


@dataclass
class _Request:
    headers: dict[str, str]
    secure: bool = False
    requestHeaders: Headers = field(init=False)

    def __post_init__(self) -> None:
        self.requestHeaders = Headers({k: [v] for k, v in self.headers.items()})

    def isSecure(self) -> bool:
        return self.secure


HOST = {"Host": "127.0.0.1:8080"}
ORIGINS = [
    # (id, headers, secure, refused)
    ("no-origin", {}, False, False),
    ("same-origin", {"Origin": "http://127.0.0.1:8080"}, False, False),
    ("same-origin-case", {"Origin": "HTTP://127.0.0.1:8080"}, False, False),
    ("same-origin-fetch", {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"},
     False, False),
    ("user-typed", {"Sec-Fetch-Site": "none"}, False, False),
    ("other-host", {"Origin": "http://evil.example"}, False, True),
    ("other-port", {"Origin": "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site"},
     False, True),
    ("other-scheme", {"Origin": "https://127.0.0.1:8080"}, False, True),
    ("null", {"Origin": "null"}, False, True),
    ("garbage", {"Origin": "http://[::1"}, False, True),
    ("cross-site-no-origin", {"Sec-Fetch-Site": "cross-site"}, False, True),
    ("cross-site-same-origin", {"Origin": "http://127.0.0.1:8080",
                                "Sec-Fetch-Site": "cross-site"}, False, True),
    ("https-default-port", {"Origin": "https://127.0.0.1:8080"}, True, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "secure", "refused"), [o[1:] for o in ORIGINS], ids=[o[0] for o in ORIGINS]
)
def test_origin_decides(headers: dict[str, str], secure: bool, refused: bool) -> None:
    """When Origin names another origin or Sec-Fetch-Site says cross-site, the request
    is refused; without Origin (curl, the CLI) or from this origin it is not."""
    problem = cross_site_problem(_Request({**HOST, **headers}, secure))
    assert (problem is not None) == refused, problem


def test_origin_without_host_is_refused() -> None:
    """When there is no Host header, no Origin can be this server's own."""
    assert cross_site_problem(_Request({"Origin": "http://127.0.0.1:8080"})) is not None


def test_default_ports_match() -> None:
    """When Host omits the default port, an Origin that spells it out still matches."""
    request = _Request({"Host": "localhost", "Origin": "http://localhost:80"})
    assert cross_site_problem(request) is None


@pytest.mark.parametrize(
    ("content_type", "refused"),
    [
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data; boundary=x", True),
        ("TEXT/PLAIN; charset=utf-8", True),
        ("application/json", False),
        ('multipart/related; type="application/dicom"; boundary=x', False),
        (None, False),
    ],
    ids=["form", "form-data", "text", "json", "related", "none"],
)
def test_preflight_free_bodies_refused(content_type: str | None, refused: bool) -> None:
    """When a body type a page may send cross-site without a preflight is declared, it
    is refused; other types and no body are not."""
    headers = {"Content-Type": content_type} if content_type else {}
    assert (simple_body_problem(_Request(headers)) is not None) == refused
