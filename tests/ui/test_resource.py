"""The console's files under /ui/ (stowpair.ui.resource), in memory over StubTreq, and
the files themselves: every import resolves inside the package, nothing comes from the
network."""

from __future__ import annotations

import re
from typing import Any

import pytest
from treq.testing import StubTreq
from twisted.web.resource import Resource

from stowpair.ui.resource import ConsoleRedirect, ConsoleResource, load_files
from tests.queue.helpers import result_of

FILES = load_files()


def fetch(method: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    root = Resource()
    root.putChild(b"ui", ConsoleResource(FILES))
    root.putChild(b"", ConsoleRedirect())
    stub = StubTreq(root)
    d = stub.request(method, f"http://console.test{path}", headers=headers, allow_redirects=False)
    stub.flush()
    response: Any = result_of(d)
    body = result_of(stub.content(response))
    found = {k.decode().lower(): v[-1].decode() for k, v in response.headers.getAllRawHeaders()}
    return response.code, found, body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/js/app.js", "text/javascript; charset=utf-8"),
        ("/ui/console.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ],
    ids=["index", "module", "style", "icon"],
)
def test_files_are_served_with_their_type_and_policy(path: str, content_type: str) -> None:
    """When a console file is asked for, it comes with its type, no-sniff, no framing and
    a policy that allows this origin only."""
    code, headers, body = fetch("GET", path)
    assert code == 200 and body
    assert headers["content-type"] == content_type
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "connect-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize(("path", "location"), [("/", "/ui/"), ("/ui", "/ui/")], ids=["root", "ui"])
def test_console_paths_redirect_to_the_page(path: str, location: str) -> None:
    """When / or /ui is asked for, the browser is sent to /ui/."""
    code, headers, _ = fetch("GET", path)
    assert (code, headers["location"]) == (302, location)


@pytest.mark.parametrize(
    "path", ["/ui/nothing.js", "/ui/js/", "/ui/../setup.py", "/ui/index.html/x"]
)
def test_unknown_files_are_json_404(path: str) -> None:
    """When a path names no console file, the answer is a JSON 404 pointing at /ui/."""
    code, headers, body = fetch("GET", path)
    assert code == 404
    assert headers["content-type"] == "application/json"
    assert b"the console is at /ui/" in body


def test_unchanged_file_is_304() -> None:
    """When the browser already holds the file (If-None-Match its ETag), 304 without it."""
    _, headers, _ = fetch("GET", "/ui/js/api.js")
    code, _, body = fetch("GET", "/ui/js/api.js", **{"If-None-Match": headers["etag"]})
    assert (code, body) == (304, b"")


def test_changing_methods_are_refused() -> None:
    """When anything but GET or HEAD is sent to a console file, it is refused (405)."""
    assert fetch("POST", "/ui/")[0] == 405
    assert fetch("HEAD", "/ui/")[0] == 200


_IMPORT = re.compile(r"""(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]""")
#: Relative links of the page (absolute ones, like the REST API's, are not files).
_LINK = re.compile(r"""(?:src|href)="([^"#:/][^"#:]*)\"""")


def test_every_import_and_link_resolves_in_the_package() -> None:
    """When the page loads, every module it imports and every file it links is one the
    package ships (a typo would otherwise show only in a browser)."""
    wanted = {("index.html", name) for name in _LINK.findall(FILES["index.html"].decode())}
    for name, body in FILES.items():
        if name.endswith(".js"):
            folder = name.rpartition("/")[0]
            for target in _IMPORT.findall(body.decode()):
                assert target.startswith("./"), f"{name} imports {target}: not a relative module"
                wanted.add((name, f"{folder}/{target[2:]}".lstrip("/")))
    missing = [(source, target) for source, target in wanted if target not in FILES]
    assert wanted and missing == []


def test_nothing_is_fetched_from_another_origin() -> None:
    """When the console runs offline, it needs nothing else: no file names an http(s)
    URL (no CDN, no web font)."""
    namespace = rb'xmlns="http://www.w3.org/2000/svg"'  # a name, never fetched
    offenders = [
        n for n, body in FILES.items() if re.search(rb"https?://", body.replace(namespace, b""))
    ]
    assert offenders == []
