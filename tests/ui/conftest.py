"""Fixtures of the browser tests: a real ``twistd stowpair`` (with its demo study and
built-in emulator), a ``twistd stowrsd`` refusing some instances (``--fail-rate``), and
the system's headless Chromium driven by Playwright.

Without Playwright or Chromium the tests skip with the install command, unless
``STOWPAIR_REQUIRE_PEERS=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import peers
from tests.support.peers import Peer

#: Debian's chromium; STOWPAIR_CHROMIUM points elsewhere.
CHROMIUM = os.environ.get("STOWPAIR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
#: Screenshots are documentation: docs/console-*.png.
DOCS = Path(__file__).resolve().parents[2] / "docs"

CONFIG = """
base_dir = "{work}"
demo_on_empty = true
[device]
name = "stowpair"
ae_titles = ["STOWPAIR"]
task_polling_interval = "PT1S"
[rest]
port = {rest}
[emulator]
port = {emulator}
path = "/stowrs"
directory = "var/stowrsd"
fsync = false
[archive]
storage = "var/archive"
database = "var/stowpair.sqlite"
[logging]
json_file = "var/stowpair.json"
[webapps.stowrsd]
url = "http://127.0.0.1:{emulator}/stowrs"
description = "The built-in stowrsd emulator"
[webapps.flaky]
url = "http://127.0.0.1:{flaky}/dicom-web"
description = "twistd stowrsd --fail-rate 0.4 --fail-reason A700"
[webapps.flaky.properties]
bearer-token = "never-shown-token"
[exporters.StowExporter]
uri = "stow:stowrsd"
queue = "Export1"
description = "Export objects using STOW-RS service"
[exporters.Archive2]
uri = "stow:stowrsd"
queue = "Export1"
description = "A second destination (here the emulator again)"
[exporters.Flaky]
uri = "stow:flaky"
queue = "Flaky"
description = "A destination that refuses some instances"
[queues.Export1]
retry_delay = "PT1S"
[queues.Flaky]
max_retries = 0
description = "No retry: the refusals stay visible"
[[rules]]
name = "Export every study"
entity = "Study"
exporters = ["StowExporter"]
delay = "PT1S"
"""


def _missing(reason: str) -> None:
    if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
        pytest.fail(f"{reason}, and STOWPAIR_REQUIRE_PEERS=1")
    pytest.skip(reason)


@dataclass
class Stowpair:
    """The running service: its base URL and blocking REST helpers for the tests."""

    peer: Peer
    url: str

    def rest(self, method: str, path: str, **query: str) -> tuple[int, Any]:
        """One call of the REST API under /dcm4chee-arc, as curl would make it."""
        target = f"{self.url}/dcm4chee-arc{path}"
        if query:
            target += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(target, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
                return response.status, json.loads(body) if body else None
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, json.loads(body) if body else None

    def task(self, task_id: int) -> dict[str, Any]:
        code, body = self.rest("GET", f"/monitor/export/{task_id}")
        assert code == 200, body
        return dict(body)

    def demo_study(self) -> str:
        code, studies = self.rest("GET", "/aets/STOWPAIR/rs/studies")
        assert code == 200 and studies, studies
        return str(studies[0]["0020000D"]["Value"][0])

    def export(self, exporter: str, **query: str) -> int:
        path = f"/aets/STOWPAIR/rs/studies/{self.demo_study()}/export/{exporter}"
        code, task = self.rest("POST", path, **query)
        assert code == 202, task
        return int(task["taskID"])

    def wait_until(self, condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"{what} within {seconds:.0f}s\n{self.peer.log_tail(30)}")

    def finished(self, task_id: int) -> dict[str, Any]:
        done = ("COMPLETED", "WARNING", "FAILED", "CANCELED")
        self.wait_until(lambda: self.task(task_id)["status"] in done, f"task {task_id} done")
        return self.task(task_id)


@pytest.fixture(scope="module")
def stowpair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stowpair]:
    """twistd stowpair with the demo study exported to its emulator, and twistd stowrsd
    refusing 40% of the instances with 0xA700 (seeded) behind the Flaky exporter."""
    work = tmp_path_factory.mktemp("console")
    flaky_port, rest_port, emulator_port = peers.free_port(), peers.free_port(), peers.free_port()
    flaky_args = ["-b", f"127.0.0.1:{flaky_port}", "-d", str(work / "flaky"), "--path"]
    flaky_args += ["/dicom-web", "--fail-rate", "0.4", "--fail-reason", "A700", "--seed", "5"]
    flaky_args += ["--no-fsync", "--json-log", str(work / "stowrsd.json")]
    flaky = peers.start_twistd(work / "stowrsd", "stowrsd", flaky_args, flaky_port)
    conf = work / "stowpair.toml"
    conf.write_text(
        CONFIG.format(work=work, rest=rest_port, emulator=emulator_port, flaky=flaky_port)
    )
    peer = peers.start_twistd(work, "stowpair", ["-c", str(conf)], rest_port)
    service = Stowpair(peer, f"http://127.0.0.1:{rest_port}")
    try:
        service.wait_until(lambda: service.rest("GET", "/monitor/export")[1] != [], "demo task")
        service.finished(service.rest("GET", "/monitor/export")[1][0]["taskID"])
        yield service
    finally:
        peer.stop()
        flaky.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (the system's, no download) through Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Any, stowpair: Stowpair) -> Iterator[Any]:
    """A fresh tab at 1280x800; the test fails on any script error of the console."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    context = browser.new_context(viewport=VIEWPORT, base_url=stowpair.url)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # An error answer of the API is logged by the browser as "Failed to load resource";
    # the console shows those itself. Anything else is a script error.
    tab.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield tab
    context.close()
    assert errors == [], errors


def screenshot(page: Any, name: str, full_page: bool = False) -> None:
    """docs/console-{name}.png at 1280x800 (or the whole page), the mouse out of the way."""
    page.mouse.move(0, 799)
    page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=full_page)
