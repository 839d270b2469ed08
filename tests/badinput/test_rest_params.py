"""Bad parameters, paths and methods on the ``/dcm4chee-arc`` REST API of the running
service (real loopback socket): one clear JSON error each, never a 5xx.

tests/queue/test_rest.py covers each documented error in memory; this module sends the
hostile variants (raw bytes, out-of-range numbers, broken DT ranges, wrong methods on
every route) over the wire, then fuzzes query strings with hypothesis.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred

from tests.badinput.conftest import LogWatcher
from tests.badinput.rawhttp import RawResponse
from tests.badinput.servers import AET, Target, fuzz, start_stowpair, start_stowrsd

B = "/dcm4chee-arc"
EXPORT = f"{B}/aets/{AET}/rs/studies/1.2.3/export"
M = f"{B}/monitor/export"
EXTRA = """
[webapps.dest]
url = "http://127.0.0.1:{port}/stowrs"
[exporters.ToDest]
uri = "stow:dest"
queue = "Export1"
[queues.Export1]
retry_delay = "PT1S"
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    dest = start_stowrsd(tmp_path_factory.mktemp("dest"))
    port = next(dest).port
    root = tmp_path_factory.mktemp("rest")
    gen = start_stowpair(root, EXTRA.format(port=port))
    target = next(gen)
    for batch in ("one", "two"):  # two tasks to list, count, cancel and reschedule
        r = pytest_twisted.blockon(
            Deferred.fromCoroutine(call(target, "POST", f"{EXPORT}/ToDest?batchID={batch}"))
        )
        assert r.status == 202, r.body
    yield target
    for g in (gen, dest):
        g.close()


async def call(target: Target, method: str, path: str | bytes, headers: bytes = b"") -> RawResponse:
    raw = path if isinstance(path, bytes) else path.encode("latin-1")
    data = method.encode() + b" " + raw + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers
    data += b"Content-Length: 0\r\n\r\n"
    target.name = "rest"
    try:
        return await target.send(data)
    finally:
        target.name = "ingest"


def check_error(r: RawResponse, what: str) -> str:
    """A 4xx JSON answer with one sentence in errorMessage; returns the sentence
    ("" for HEAD, whose answer has headers only)."""
    assert 400 <= r.status < 500, f"{what}: {r.status} {r.body[:300]!r}"
    assert r.content_type == "application/json", f"{what}: {r.headers}"
    if r.head:
        return ""
    message = json.loads(r.body)["errorMessage"]
    assert isinstance(message, str) and message and "\n" not in message, what
    assert "Traceback" not in message and "Internal error" not in message, what
    return message


BAD = [
    # (id, method, path, status, text the message contains)
    ("status", "GET", f"{M}?status=DONE%00", 400, "status="),
    ("status-empty-count", "GET", f"{M}/count?status=%20", 400, "status="),
    ("orderby", "GET", f"{M}?orderby=createdTime%3BDROP%20TABLE", 400, "orderby="),
    ("limit-zero", "GET", f"{M}?limit=0", 400, "limit="),
    ("limit-huge", "GET", f"{M}?limit=99999999999999999999999", 400, "limit="),
    ("limit-unicode-digits", "GET", f"{M}?limit=%D9%A3", 400, "limit="),
    ("limit-float", "GET", f"{M}/batch?limit=1.5", 400, "limit="),
    ("offset-neg", "GET", f"{M}?offset=-5", 400, "offset="),
    ("offset-sup", "GET", f"{M}/count?offset=%C2%B2", 400, "offset="),
    ("taskid", "GET", f"{M}?taskID=1%20OR%201=1", 400, "taskID="),
    ("dt-month-13", "GET", f"{M}?createdTime=20251301", 400, "createdTime="),
    ("dt-feb-30", "GET", f"{M}?updatedTime=20250230", 400, "updatedTime="),
    ("dt-dash-only", "GET", f"{M}?createdTime=-", 400, "createdTime="),
    ("dt-two-dashes", "GET", f"{M}?createdTime=2025--2026", 400, "createdTime="),
    ("dt-hour-25", "GET", f"{M}?createdTime=2025010125", 400, "createdTime="),
    ("dt-year-0", "GET", f"{M}?createdTime=0000", 400, "createdTime="),
    ("dt-year-1", "GET", f"{M}?createdTime=0001", 400, "createdTime="),
    ("dt-year-9999", "GET", f"{M}?updatedTime=9999-", 400, "updatedTime="),
    ("dt-month-0", "GET", f"{M}?createdTime=202500", 400, "createdTime="),
    ("dt-newline", "GET", f"{M}?createdTime=20250101%0A", 400, "createdTime="),
    ("dt-arabic", "GET", f"{M}?createdTime=%D9%A2%D9%A0%D9%A2%D9%A5", 400, "createdTime="),
    ("taskid-huge", "GET", f"{M}?taskID={'9' * 30}", 400, "taskID="),
    ("taskid-sup", "GET", f"{M}/count?taskID=%C2%B2", 400, "taskID="),
    ("dt-fraction-7", "GET", f"{M}?createdTime=20250101000000.1234567", 400, "createdTime="),
    ("accept", "GET", f"{M}?accept=image/png", 406, "image/png"),
    ("cancel-no-status", "POST", f"{M}/cancel", 400, "Missing query parameter: status"),
    ("cancel-done", "POST", f"{M}/cancel?status=CANCELED", 400, "status: CANCELED"),
    ("cancel-unknown", "POST", f"{M}/999999/cancel", 404, "999999"),
    ("cancel-not-number", "POST", f"{M}/abc/cancel", 404, "abc"),
    ("cancel-huge-id", "POST", f"{M}/{'9' * 40}/cancel", 404, "No such Task"),
    ("delete-sup-id", "DELETE", f"{M}/%C2%B2", 404, "No such Task"),
    ("export-year-0", "POST", f"{EXPORT}/ToDest?scheduledTime=00000101000000", 400, "scheduled"),
    ("reschedule-exporter", "POST", f"{M}/1/reschedule/Nope", 400, "ID:Nope"),
    ("reschedule-time", "POST", f"{M}/1/reschedule?scheduledTime=20251231", 400, "scheduledTime="),
    ("reschedule-status", "POST", f"{M}/reschedule?status=RUNNING", 400, "status="),
    ("delete-unknown", "DELETE", f"{M}/424242", 404, "424242"),
    ("delete-bad-filter", "DELETE", f"{M}?createdTime=x", 400, "createdTime="),
    ("export-aet", "POST", f"{B}/aets/NOPE/rs/studies/1.2.3/export/ToDest", 404, "NOPE"),
    ("export-exporter", "POST", f"{EXPORT}/Nope", 404, "Nope"),
    ("export-time", "POST", f"{EXPORT}/ToDest?scheduledTime=20251340000000", 400, "scheduledTime="),
    ("export-time-12h", "POST", f"{EXPORT}/ToDest?scheduledTime=2025123112300PM", 400, "Time="),
    ("export-webapp", "POST", f"{EXPORT}/stowrs:nope", 404, "nope"),
    ("export-get", "GET", f"{EXPORT}/ToDest", 405, "GET"),
    ("export-put", "PUT", f"{EXPORT}/ToDest", 405, "PUT"),
    ("reload-get", "GET", f"{B}/ctrl/reload", 405, "GET"),
    ("reload-delete", "DELETE", f"{B}/ctrl/reload", 405, "DELETE"),
    ("list-post", "POST", f"{M}", 405, "POST"),
    ("list-patch", "PATCH", f"{M}", 405, "PATCH"),
    ("count-delete", "DELETE", f"{M}/count", 405, "DELETE"),
    ("monitor-unknown", "GET", f"{M}/1/2/3/4", 404, "No such resource"),
    ("monitor-other", "GET", f"{B}/monitor/import", 404, "No such resource"),
    ("arc-unknown", "GET", f"{B}/nothing", 404, "No such resource"),
    ("root-post", "POST", "/", 405, "POST"),  # GET / redirects to the console
    ("console-delete", "DELETE", "/ui/", 405, "DELETE"),
    ("console-unknown", "GET", "/ui/nothing.js", 404, "the console is at /ui/"),
    ("qido-unknown-key", "GET", f"{B}/aets/{AET}/rs/studies?PatientName=X", 400, "Unsupported"),
    ("qido-bad-date", "GET", f"{B}/aets/{AET}/rs/studies?StudyDate=2025", 400, "StudyDate="),
    ("config-post", "POST", f"{B}/ctrl/config", 405, "POST"),
    ("emulator-limit", "GET", f"{B}/monitor/emulator?limit=0", 400, "limit="),
    ("raw-byte-monitor", "GET", f"{M}/\xff/a/b", 400, "raw bytes"),
    ("raw-byte-aet", "GET", f"{B}/aets/{AET}/\xff", 400, "raw bytes"),
    ("raw-byte-arc", "GET", f"{B}/\xff\xfe", 400, "raw bytes"),
    ("raw-99-monitor", "GET", f"{M}/\x99/a/b", 400, "raw bytes"),
    ("raw-99-delete", "DELETE", f"{M}/\x99", 400, "raw bytes"),
    ("raw-99-health", "HEAD", "/health\x99", 400, ""),
    ("pct-byte-monitor", "GET", f"{M}/%ff/a/b", 400, "not UTF-8"),
    ("pct-byte-aet", "GET", f"{B}/aets/{AET}/%ff%fe", 400, "not UTF-8"),
    ("pct-byte-arc", "GET", f"{B}/%ff", 400, "not UTF-8"),
    ("pct-byte-query", "GET", f"{M}?status=%ff", 400, "not UTF-8"),
    ("pct-byte-query-post", "POST", f"{M}/cancel?status=%C3", 400, "not UTF-8"),
    ("head-reload", "HEAD", f"{B}/ctrl/reload", 405, ""),
    ("head-export", "HEAD", f"{EXPORT}/ToDest", 405, ""),
    ("head-cancel", "HEAD", f"{M}/1/cancel", 405, ""),
    ("http2", "GET", f"{M} HTTP/2.0\r\nX:", 400, "HTTP/2.0"),
    ("health-sub", "GET", "/health/x", 404, "No such resource"),
    ("arc-itself", "GET", f"{B}", 404, "No such resource"),
    ("aets-itself", "DELETE", f"{B}/aets", 404, "No such resource"),
    ("traversal", "DELETE", f"{M}/..%2f..%2f..%2fetc%2fpasswd", 404, "No such Task"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "status", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
@pytest_twisted.ensureDeferred
async def test_bad_request_gets_one_clear_json_error(
    service: Target, log_watcher: LogWatcher, method: str, path: str, status: int, text: str
) -> None:
    """When a REST parameter, path or method is wrong, the answer is one JSON error
    with the documented status, naming what was wrong; nothing is logged as a crash."""
    log_watcher.take()
    r = await call(service, method, path)
    message = check_error(r, f"{method} {path}")
    assert r.status == status, (r.status, message)
    assert text in message, message
    if status == 405:
        assert r.header(b"allow"), r.headers
    assert not log_watcher.take()


# -- fuzzed query strings ------------------------------------------------------------------

_NAMES = [
    "status", "orderby", "limit", "offset", "taskID", "createdTime", "updatedTime",
    "scheduledTime", "ExporterID", "StudyInstanceUID", "batchID", "dicomDeviceName",
    "accept", "newDeviceName", "x", "",
]  # fmt: skip
_VALUES = st.one_of(
    st.sampled_from(
        [
            "",
            "-",
            "0",
            "-1",
            "99999",
            "100000",
            "1e3",
            "COMPLETED",
            "SCHEDULED_FOR_RETRY",
            "in process",
            "-updatedTime",
            "createdTime",
            "20250101",
            "20250101-",
            "-20250101",
            "20251301",
            "2025-2026",
            "20250101000000.000001",
            "text/csv;delimiter=semicolon",
            "*/*",
            "image/png",
            "ToDest",
            "Nope,ToDest",
            "\u00ff",
            "%ff",
            "a" * 5000,
        ]
    ),
    st.text(max_size=30),
)
_ROUTES = [
    ("GET", f"{B}/monitor/export"),
    ("GET", f"{B}/monitor/export/count"),
    ("GET", f"{B}/monitor/export/batch"),
    ("POST", f"{B}/monitor/export/cancel"),
    ("POST", f"{B}/monitor/export/999/reschedule"),
    ("POST", f"{B}/monitor/export/reschedule/Nope"),
    ("DELETE", f"{B}/monitor/export/999"),
    ("POST", f"{EXPORT}/Nope"),
]


@st.composite
def queries(draw: st.DrawFn) -> tuple[str, str]:
    method, path = draw(st.sampled_from(_ROUTES))
    pairs = draw(st.lists(st.tuples(st.sampled_from(_NAMES), _VALUES), max_size=5))
    raw = draw(st.booleans())
    parts = [
        (n + "=" + v) if raw else (quote(n, safe="") + "=" + quote(v, safe="")) for n, v in pairs
    ]
    query = "&".join(parts).replace(" ", "+").replace("\r", "").replace("\n", "")
    return method, path + ("?" + query if query else "")


@fuzz(500)
@given(route=queries())
def test_fuzzed_query_strings(
    service: Target, log_watcher: LogWatcher, route: tuple[str, str]
) -> Deferred[None]:
    """When query strings are random, answers are 2xx or one JSON 4xx, never 5xx."""

    async def run() -> None:
        method, path = route
        r = await call(service, method, path.encode("utf-8"))
        if r.status >= 400:
            check_error(r, f"{method} {path}")
        else:
            assert r.status in (200, 202, 204), (r.status, r.body[:200])
        assert not log_watcher.take(), path

    return Deferred.fromCoroutine(run())
