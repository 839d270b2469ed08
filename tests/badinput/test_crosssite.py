"""Cross-site requests against the running stowpair service (real loopback socket), as a
browser sends them for a page of another origin: a form POST and a no-cors ``fetch`` are
refused with 403 on every state-changing route; the same requests from this origin, or
without ``Origin`` (curl, the CLI), are served.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import pytest_twisted

from tests.badinput.rawhttp import RawResponse
from tests.badinput.servers import AET, Target, start_stowpair, valid_request

B = "/dcm4chee-arc"
M = f"{B}/monitor/export"
STUDY = "1.2.826.0.1.3680043.8.498.77"
EXPORT = f"{B}/aets/{AET}/rs/studies/{STUDY}/export/ToDest"
LATER = "?scheduledTime=20991231000000"  # tasks stay SCHEDULED: they can be cancelled
EXTRA = """
[webapps.dest]
url = "http://127.0.0.1:9/stowrs"
[exporters.ToDest]
uri = "stow:dest"
queue = "Export1"
[queues.Export1]
"""
EVIL = "http://evil.example"
#: What a browser adds to a form POST from a page of another site.
FORM = {
    "Origin": EVIL,
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Content-Type": "application/x-www-form-urlencoded",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
}
#: ... and to ``fetch(url, {method: "POST", mode: "no-cors"})``.
NO_CORS = {
    "Origin": EVIL,
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "no-cors",
    "Sec-Fetch-Dest": "empty",
    "Content-Type": "text/plain;charset=UTF-8",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from start_stowpair(tmp_path_factory.mktemp("crosssite"), EXTRA)


async def send(
    target: Target, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> RawResponse:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{target.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    name, target.name = target.name, "crosssite"
    try:
        return await target.send(data)
    finally:
        target.name = name


async def new_task(target: Target) -> int:
    r = await send(target, "POST", EXPORT + LATER, {})
    assert r.status == 202, r.body
    return int(json.loads(r.body)["taskID"])


async def status_of(target: Target, task: int) -> str:
    r = await send(target, "GET", f"{M}?taskID={task}", {})
    return str(json.loads(r.body)[0]["status"])


def refused(r: RawResponse, style: str = "json") -> str:
    assert r.status == 403, (r.status, r.body[:300])
    if style == "json":
        assert r.content_type == "application/json"
        message = str(json.loads(r.body)["errorMessage"])
    else:
        assert r.content_type == "text/plain"
        message = r.body.decode()
    assert "Cross-site request refused" in message
    assert not r.header(b"access-control-allow-origin")
    return message


@pytest.mark.parametrize("browser", [FORM, NO_CORS], ids=["form-post", "no-cors-fetch"])
@pytest_twisted.ensureDeferred
async def test_cross_site_cancel_refused(service: Target, browser: dict[str, str]) -> None:
    """When a page of another site makes the browser POST a cancel (form or no-cors
    fetch), the answer is 403 and the task is untouched."""
    task = await new_task(service)
    r = await send(service, "POST", f"{M}/{task}/cancel", browser, b"x=1")
    refused(r)
    assert await status_of(service, task) == "SCHEDULED"


ROUTES = [
    ("delete-one", "DELETE", f"{M}/1"),
    ("delete-matching", "DELETE", f"{M}?status=SCHEDULED"),
    ("cancel-matching", "POST", f"{M}/cancel?status=SCHEDULED"),
    ("reschedule", "POST", f"{M}/1/reschedule"),
    ("export", "POST", EXPORT),
    ("reload", "POST", f"{B}/ctrl/reload"),
    ("queue-cancel", "POST", f"{B}/queue/Export1/cancel?status=SCHEDULED"),
    ("queue-delete", "DELETE", f"{B}/queue/Export1?status=SCHEDULED"),
]


@pytest.mark.parametrize(("method", "path"), [r[1:] for r in ROUTES], ids=[r[0] for r in ROUTES])
@pytest.mark.parametrize("browser", [FORM, NO_CORS], ids=["form-post", "no-cors-fetch"])
@pytest_twisted.ensureDeferred
async def test_every_state_changing_route_refuses(
    service: Target, method: str, path: str, browser: dict[str, str]
) -> None:
    """When any state-changing REST route gets a cross-site request, it answers 403."""
    count = await send(service, "GET", f"{M}/count", {})
    refused(await send(service, method, path, browser, b"x=1"))
    assert (await send(service, "GET", f"{M}/count", {})).body == count.body


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=["other-port", "null-origin", "fetch-site-only"],
)
@pytest_twisted.ensureDeferred
async def test_other_origins_refused(service: Target, headers: dict[str, str]) -> None:
    """When Origin is this host on another port or "null", or only Sec-Fetch-Site says
    cross-site, the state-changing request is refused too."""
    task = await new_task(service)
    refused(await send(service, "POST", f"{M}/{task}/cancel", headers))
    assert await status_of(service, task) == "SCHEDULED"


@pytest_twisted.ensureDeferred
async def test_same_origin_fetch_accepted(service: Target) -> None:
    """When a page of this server posts a cancel (same Origin), it is served (204)."""
    task = await new_task(service)
    headers = {
        "Origin": f"http://127.0.0.1:{service.port}",
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "cors",
    }
    r = await send(service, "POST", f"{M}/{task}/cancel", headers)
    assert r.status == 204, r.body
    assert await status_of(service, task) == "CANCELED"


@pytest_twisted.ensureDeferred
async def test_client_without_origin_accepted(service: Target) -> None:
    """When curl or the CLI (no Origin) posts a cancel, it is served (204)."""
    task = await new_task(service)
    r = await send(service, "POST", f"{M}/{task}/cancel", {"User-Agent": "curl/8.5.0"})
    assert r.status == 204, r.body


@pytest_twisted.ensureDeferred
async def test_same_origin_form_body_refused(service: Target) -> None:
    """When even a same-origin request carries a form or text/plain body, the state-
    changing route refuses it (415): such bodies are what pages may send anywhere."""
    task = await new_task(service)
    headers = {"Origin": f"http://127.0.0.1:{service.port}", "Content-Type": "text/plain"}
    r = await send(service, "POST", f"{M}/{task}/cancel", headers, b"hello")
    assert r.status == 415 and "Content-Type text/plain" in json.loads(r.body)["errorMessage"]
    assert await status_of(service, task) == "SCHEDULED"


@pytest_twisted.ensureDeferred
async def test_preflight_gets_no_cors_grant(service: Target) -> None:
    """When a page asks (CORS preflight) to DELETE a task, no Access-Control header
    grants it, so the browser never sends the DELETE."""
    headers = {"Origin": EVIL, "Access-Control-Request-Method": "DELETE"}
    r = await send(service, "OPTIONS", f"{M}/1", headers)
    assert r.status == 405 and not r.header(b"access-control-allow-origin")


@pytest.mark.parametrize("browser", [FORM, NO_CORS], ids=["form-post", "no-cors-fetch"])
@pytest_twisted.ensureDeferred
async def test_cross_site_ingest_refused(service: Target, browser: dict[str, str]) -> None:
    """When a page of another site POSTs to the archive ingest, even a valid STOW-RS
    body, the answer is a plain-text 403 and nothing is stored."""
    sop = "1.2.826.0.1.3680043.8.498.77.1"
    head, _, body = valid_request(service, sop).partition(b"\r\n\r\n")
    ctype = next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Type"))
    headers = {**browser, "Content-Type": ctype.split(b": ", 1)[1].decode()}
    r = await send(service, "POST", f"{service.prefix}/studies", headers, body)
    refused(r, "text")
    await service.settle()
    assert not list(service.storage.rglob(f"{sop}.dcm"))
    r = await send(service, "OPTIONS", f"{service.prefix}/studies", {"Origin": EVIL})
    assert r.status == 204 and not r.header(b"access-control-allow-origin")
