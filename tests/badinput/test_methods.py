"""Every method on every route of both listeners (the stowpair REST listener with the
archive ingest, and stowrsd), plus undecodable bytes in the request line, path and query
of each route: a defined status each, never a 5xx, in the route's error style.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import pytest_twisted

from tests.badinput.conftest import LogWatcher
from tests.badinput.rawhttp import RawResponse
from tests.badinput.servers import AET, Target, start_stowpair, start_stowrsd

B = "/dcm4chee-arc"
M = f"{B}/monitor/export"
Q = f"{B}/queue/Export1"
S = f"{B}/aets/{AET}/rs/studies"
STOW = frozenset({"POST", "OPTIONS"})
EXTRA = """
[webapps.dest]
url = "http://127.0.0.1:9/stowrs"
[exporters.ToDest]
uri = "stow:dest"
queue = "Export1"
[queues.Export1]
"""

#: route -> methods it serves (empty: no such resource, 404 for every method).
REST_ROUTES: dict[str, frozenset[str]] = {
    "/": frozenset({"GET", "HEAD"}),  # redirects to the console
    "/ui/": frozenset({"GET", "HEAD"}),
    "/ui/js/app.js": frozenset({"GET", "HEAD"}),
    "/nope": frozenset(),
    "/health": frozenset({"GET", "HEAD"}),
    "/metrics": frozenset({"GET", "HEAD"}),
    B: frozenset(),
    f"{B}/aets": frozenset(),
    f"{B}/aets/NOPE/rs/studies": frozenset(),
    f"{S}/1.2.3/export/ToDest": frozenset({"POST"}),
    f"{S}/1.2.3/series/1.2.3.4/export/ToDest": frozenset({"POST"}),
    f"{S}/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/export/ToDest": frozenset({"POST"}),
    f"{S}/1.2.3/export/stowrs:dest": frozenset({"POST"}),
    S: STOW | {"GET", "HEAD"},  # STOW-RS ingest and QIDO-RS study search
    f"{S}/count": frozenset({"GET", "HEAD"}),
    f"{B}/aets/{AET}/rs/series/count": frozenset({"GET", "HEAD"}),
    f"{B}/aets/{AET}/rs/instances/count": frozenset({"GET", "HEAD"}),
    f"{S}/1.2.3": STOW,
    M: frozenset({"GET", "HEAD", "DELETE"}),
    f"{M}/count": frozenset({"GET", "HEAD"}),
    f"{M}/batch": frozenset({"GET", "HEAD"}),
    f"{M}/cancel": frozenset({"POST"}),
    f"{M}/reschedule": frozenset({"POST"}),
    f"{M}/reschedule/ToDest": frozenset({"POST"}),
    f"{M}/1": frozenset({"GET", "HEAD", "DELETE"}),
    f"{M}/1/cancel": frozenset({"POST"}),
    f"{M}/1/reschedule": frozenset({"POST"}),
    f"{M}/1/reschedule/ToDest": frozenset({"POST"}),
    f"{B}/ctrl/reload": frozenset({"POST"}),
    f"{B}/ctrl/status": frozenset({"GET", "HEAD"}),
    f"{B}/ctrl/config": frozenset({"GET", "HEAD"}),
    f"{B}/monitor/emulator": frozenset({"GET", "HEAD"}),
    f"{B}/ctrl": frozenset(),
    f"{B}/queue": frozenset({"GET", "HEAD"}),
    f"{B}/queue/NOPE": frozenset(),
    f"{Q}": frozenset({"GET", "HEAD", "DELETE"}),
    f"{Q}/count": frozenset({"GET", "HEAD"}),
    f"{Q}/cancel": frozenset({"POST"}),
    f"{Q}/reschedule": frozenset({"POST"}),
    f"{Q}/1": frozenset({"DELETE"}),
    f"{Q}/1/cancel": frozenset({"POST"}),
    f"{Q}/1/reschedule": frozenset({"POST"}),
}
STOWRSD_ROUTES: dict[str, frozenset[str]] = {
    "/": frozenset(),
    "/stowrs": frozenset(),
    "/health": frozenset({"GET", "HEAD"}),
    "/metrics": frozenset({"GET", "HEAD"}),
    "/stowrs/studies": STOW,
    "/stowrs/studies/1.2.3": STOW,
}
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"]
#: (id, how the route is spoiled): undecodable bytes in the path or the query.
SPOILED = [
    ("pct-path", lambda route: route.rstrip("/") + "/%ff%fe"),
    ("pct-segment", lambda route: route + "%C3"),
    ("raw-path", lambda route: route + "\x99"),
    ("pct-query", lambda route: route + "?status=%ff"),
    ("raw-query", lambda route: route + "?x=\xa0"),
]


@pytest.fixture(scope="module", params=["rest", "stowrsd"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "stowrsd":
        yield from start_stowrsd(root)
    else:
        yield from start_stowpair(root, EXTRA)


def _routes(target: Target) -> dict[str, frozenset[str]]:
    return STOWRSD_ROUTES if target.name == "stowrsd" else REST_ROUTES


def _is_stow(target: Target, path: str, method: str) -> bool:
    """Whether ``method`` on ``path`` is routed to a STOW-RS resource (text/plain
    refusals): the archive's ``/rs/`` paths but the export triggers, GET and HEAD of
    ``/rs/studies`` (the QIDO-RS search) and the ``/count`` paths (JSON)."""
    path = path.split("?")[0]
    if target.name == "stowrsd":
        return path not in ("/health", "/metrics")  # the rest is the STOW-RS resource's
    rs = f"{B}/aets/{AET}/rs"
    counts = {f"{rs}/{level}/count" for level in ("studies", "series", "instances")}
    if path.rstrip("/") in counts or (method in ("GET", "HEAD") and path.rstrip("/") == S):
        return False
    return path.startswith(f"{rs}/") and re.search(r"/export/[^/]+$", path) is None


async def _send(target: Target, method: str, path: str) -> RawResponse:
    data = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    name = target.name
    target.name = "routes-stowrsd" if name == "stowrsd" else "routes-stowpair"
    try:
        return await target.send(data.encode("latin-1"))
    finally:
        target.name = name


def _check_shape(r: RawResponse, stow: bool, what: str) -> str:
    """A readable refusal in the route's style; returns its sentence ("" for HEAD)."""
    assert r.status != 0 and not r.timed_out, f"{what}: no answer"
    assert r.status < 500, f"{what}: {r.status} {r.body[:300]!r}"
    if r.status < 400:
        return ""
    expected = "text/plain" if stow else "application/json"
    assert r.content_type == expected, f"{what}: {r.status} {r.headers}"
    if r.head:
        assert r.body == b"", what
        return ""
    if stow:
        text = r.body.decode("utf-8").strip()
    else:
        text = json.loads(r.body)["errorMessage"]
    assert text and "\n" not in text and "Traceback" not in text, what
    return text


@pytest.mark.parametrize("method", METHODS)
@pytest_twisted.ensureDeferred
async def test_every_method_on_every_route(
    target: Target, log_watcher: LogWatcher, method: str
) -> None:
    """When any method reaches any route, the answer is defined: the route's own answer
    for a method it serves, 405 with the right Allow for one it does not (HEAD included),
    404 where there is no resource; never a 5xx, never a logged crash."""
    log_watcher.take()
    for route, allowed in _routes(target).items():
        what = f"{method} {route} on {target.name}"
        r = await _send(target, method, route)
        text = _check_shape(r, _is_stow(target, route, method), what)
        if not allowed:
            assert r.status == 404, (what, r.status)
        elif method in allowed:
            # the route's own answers: 2xx, or 4xx such as "No such Task", not routing
            assert r.status not in (405, 501), (what, r.status, r.body[:200])
            assert "No such resource" not in text, (what, text)
        else:
            assert r.status == 405, (what, r.status, r.body[:200])
            allow = {m.strip() for m in b",".join(r.header(b"allow")).decode().split(",")}
            assert allow == set(allowed), (what, allow)
    assert not log_watcher.take()


@pytest.mark.parametrize("spoil", [s[1] for s in SPOILED], ids=[s[0] for s in SPOILED])
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
@pytest_twisted.ensureDeferred
async def test_undecodable_bytes_get_400(
    target: Target, log_watcher: LogWatcher, method: str, spoil: object
) -> None:
    """When the path or query of any route holds bytes that are not UTF-8 (raw or
    percent-encoded), the answer is a 400 saying so, on every method."""
    log_watcher.take()
    for route in _routes(target):
        path = spoil(route)  # type: ignore[operator]
        what = f"{method} {path!r} on {target.name}"
        r = await _send(target, method, path)
        # raw bytes are refused with the request line, before any route is known: in the
        # listener's style (JSON on the REST listener, text on stowrsd)
        raw = any(ord(c) > 0x7E for c in path)
        stow = target.name == "stowrsd" if raw else _is_stow(target, path, method)
        text = _check_shape(r, stow, what)
        assert r.status == 400, (what, r.status, r.body[:200])
        assert r.head or "UTF-8" in text or "percent-encode" in text, (what, text)
    assert not log_watcher.take()
