"""The console's routes on the running service, over real loopback sockets: ``/`` and
``/ui/``, QIDO-RS ``/rs/studies``, ``/monitor/emulator``, ``/ctrl/config``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.internet import reactor

from stowpair.archive.demo import generate_demo_study
from stowpair.config.loader import load_config
from stowpair.service import StowpairService
from tests.service.test_end_to_end import post_study, until
from tests.support.peers import free_port

CONFIG = """
base_dir = "."
[device]
name = "console"
ae_titles = ["E2E"]
task_polling_interval = "PT1S"
[rest]
port = 0
[emulator]
port = {emulator}
directory = "received"
fsync = false
[logging]
json_file = "-"
[webapps.emulator]
url = "http://127.0.0.1:{emulator}/stowrs"
[webapps.emulator.properties]
basic-auth = "alice:s3cret-value"
max-instances-per-request = 3
[exporters.ToEmulator]
uri = "stow:emulator"
queue = "Export1"
ae_title = "E2E"
[queues.Export1]
retry_delay = "PT1S"
[[rules]]
name = "all"
entity = "Study"
exporters = ["ToEmulator"]
# one task for the whole study, however the 6 parts of its upload are spread in time
delay = "PT2S"
"""


@pytest_twisted.async_yield_fixture
async def service(tmp_path: Path) -> AsyncIterator[StowpairService]:
    conf = tmp_path / "stowpair.toml"
    conf.write_text(CONFIG.format(emulator=free_port()))
    running = StowpairService(load_config(conf), reactor, conf)
    running.startService()
    await running.ready
    yield running
    await running.stopService()


def base(service: StowpairService) -> str:
    assert service.rest_port is not None
    return f"http://127.0.0.1:{service.rest_port.getHost().port}"


async def get(url: str, **headers: str) -> tuple[int, Any, bytes]:
    response = await treq.get(url, headers=headers, reactor=reactor, allow_redirects=False)
    return response.code, response.headers, await response.content()


@pytest_twisted.ensureDeferred
async def test_root_sends_browsers_to_the_console(service: StowpairService) -> None:
    """When / is asked for, the answer is a redirect to /ui/, whose page is HTML under a
    same-origin Content Security Policy."""
    code, headers, _ = await get(f"{base(service)}/")
    assert (code, headers.getRawHeaders(b"location")) == (302, [b"/ui/"])
    code, headers, body = await get(f"{base(service)}/ui/")
    assert code == 200
    assert headers.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert b"script-src 'self'" in headers.getRawHeaders(b"content-security-policy")[0]
    assert b'<script type="module" src="js/app.js">' in body


@pytest_twisted.ensureDeferred
async def test_archive_studies_and_emulator_requests(
    service: StowpairService, tmp_path: Path
) -> None:
    """When a study of 6 instances is stored and exported to the emulator, QIDO-RS lists
    it with its counts and the emulator's recent requests account for the 6 instances."""
    files = generate_demo_study(tmp_path / "src", 6, size_kb=8, seed=11)
    await post_study(service, files)
    rs = f"{base(service)}/dcm4chee-arc/aets/E2E/rs"
    code, headers, body = await get(f"{rs}/studies", Accept="application/dicom+json")
    assert code == 200
    assert headers.getRawHeaders(b"content-type") == [b"application/dicom+json"]
    [study] = json.loads(body)
    assert study["00201208"] == {"vr": "IS", "Value": [6]}
    for level, count in (("studies", 1), ("series", 1), ("instances", 6)):
        assert json.loads((await get(f"{rs}/{level}/count"))[2]) == {"count": count}
    code, _, body = await get(f"{rs}/studies", Accept="application/dicom+xml")
    assert code == 406 and b"application/dicom+json" in body
    await until(lambda: len(list((tmp_path / "received").rglob("*.dcm"))) == 6)
    recent = json.loads((await get(f"{base(service)}/dcm4chee-arc/monitor/emulator"))[2])
    assert recent["enabled"] is True and recent["url"].endswith("/stowrs")
    assert [r["status"] for r in recent["requests"]] == [200, 200]
    assert sum(r["stored"] for r in recent["requests"]) == 6
    assert recent["received"] == 2


@pytest_twisted.ensureDeferred
async def test_config_view_masks_secrets_and_tells_the_last_reload(
    service: StowpairService, tmp_path: Path
) -> None:
    """When the configuration is read, a literal basic-auth is masked and the reloads
    are told: none, then APPLIED, then REFUSED with the file's errors."""
    url = f"{base(service)}/dcm4chee-arc/ctrl/config"
    code, _, body = await get(url)
    assert code == 200 and b"s3cret-value" not in body
    config = json.loads(body)
    [webapp] = config["webapps"]
    assert webapp["properties"]["basic-auth"] == "********"
    assert webapp["properties"]["max-instances-per-request"] == "3"
    assert webapp["auth"] == "HTTP Basic ********"
    assert webapp["exporterIDs"] == ["ToEmulator"]
    assert config["lastReload"] is None
    reload = f"{base(service)}/dcm4chee-arc/ctrl/reload"
    assert (await treq.post(reload, reactor=reactor)).code == 204
    assert json.loads((await get(url))[2])["lastReload"]["result"] == "APPLIED"
    conf = tmp_path / "stowpair.toml"
    conf.write_text(conf.read_text() + "\n[queues.Bad]\nmax_retries = -1\n")
    assert (await treq.post(reload, reactor=reactor)).code == 409
    refused = json.loads((await get(url))[2])["lastReload"]
    assert refused["result"] == "REFUSED"
    assert any("max_retries" in e for e in refused["errors"])
