"""Credentials put in the configuration never appear in logs, REST answers, error
messages or ``config check`` output: the running service exports to a stowrsd that
requires them and to one that refuses them (queued and synchronous), lists its tasks,
reloads (valid and invalid), and everything it wrote or answered is searched for the
secret values and their Base64 Basic form.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher

from stowpair.cli import main
from stowpair.config.secret import Secret
from stowpair.logs import JSONLogService
from tests.badinput.servers import AET, Target, start_stowpair, start_stowrsd, valid_request

TOKEN = "tok-S3cr3t-4f9a1c0b"
ENV_TOKEN = "envtok-S3cr3t-9b2d"
USERPASS = "badin-user:pw-S3cr3t-77e1"
SECRETS = [
    TOKEN,
    ENV_TOKEN,
    USERPASS,
    USERPASS.split(":")[1],
    base64.b64encode(USERPASS.encode()).decode(),
    base64.b64encode(TOKEN.encode()).decode(),
]
ENV = "STOWPAIR_BADINPUT_TOKEN"
STUDY = "1.2.826.0.1.3680043.8.498.5"
CONFIG = """
[webapps.good]
url = "http://127.0.0.1:{good}/stowrs"
properties = {{ bearer-token = "{token}" }}
[webapps.basic]
url = "http://127.0.0.1:{good}/stowrs"
properties = {{ basic-auth = "{userpass}" }}
[webapps.envtok]
url = "http://127.0.0.1:{strict}/stowrs"
properties = {{ bearer-token = "env:{env}" }}
[webapps.refused]
url = "http://127.0.0.1:{strict}/stowrs"
properties = {{ basic-auth = "{userpass}" }}
[exporters.ToGood]
uri = "stow:good"
queue = "Q"
[exporters.ToBasic]
uri = "stow:basic"
queue = "Q"
[exporters.ToEnv]
uri = "stow:envtok"
queue = "Q"
[exporters.ToRefused]
uri = "stow:refused"
queue = "Q"
[queues.Q]
max_retries = 0
max_tasks_parallel = 4
"""


class Transcript:
    """Everything the service said: log events (as the JSON and text observers would
    render them), REST bodies and headers, command output."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.parts.append(json.dumps(event, default=repr))
        if "log_failure" in event:
            self.parts.append(event["log_failure"].getTraceback())

    def leaks(self) -> list[str]:
        text = "\n".join(self.parts)
        return [s for s in SECRETS if s in text]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Target, Transcript, Path]]:
    os.environ[ENV] = ENV_TOKEN
    transcript = Transcript()
    globalLogPublisher.addObserver(transcript)
    good = start_stowrsd(
        tmp_path_factory.mktemp("good"), bearer_token=Secret(TOKEN), basic_auth=Secret(USERPASS)
    )
    strict = start_stowrsd(tmp_path_factory.mktemp("strict"), bearer_token=Secret("other"))
    good_port, strict_port = next(good).port, next(strict).port
    root = tmp_path_factory.mktemp("service")
    extra = CONFIG.format(
        good=good_port, strict=strict_port, token=TOKEN, userpass=USERPASS, env=ENV
    )
    log = root / "stowpair.json"
    json_log = JSONLogService(log)
    json_log.startService()
    service = start_stowpair(root, extra)
    yield next(service), transcript, log
    for g in (service, strict, good):
        g.close()
    json_log.stopService()
    globalLogPublisher.removeObserver(transcript)
    del os.environ[ENV]


async def rest(target: Target, transcript: Transcript, method: str, path: str) -> Any:
    data = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    target.name = "secrets"  # counted apart from the ingest fuzz
    try:
        r = await target.send(data)
    finally:
        target.name = "ingest"
    transcript.parts.append(f"{r.status} {r.headers!r} {r.body.decode('utf-8', 'replace')}")
    # 502: a synchronous export that sent nothing (documented, as dcm4chee)
    assert r.status < 500 or (r.status == 502 and "/stowrs:" in path), (path, r.body)
    return r


async def wait_done(target: Target, transcript: Transcript, count: int) -> list[Any]:
    for _ in range(300):
        r = await rest(target, transcript, "GET", "/dcm4chee-arc/monitor/export")
        tasks = json.loads(r.body)
        if len(tasks) >= count and all(
            t["status"] in ("COMPLETED", "WARNING", "FAILED") for t in tasks
        ):
            return list(tasks)
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError(f"tasks not done: {tasks}")


@pytest_twisted.ensureDeferred
async def test_secrets_never_leak(
    setup: tuple[Target, Transcript, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """When exports with bearer and basic credentials succeed and are refused, and the
    tasks, reload and config check are used, no secret appears anywhere."""
    target, transcript, log = setup
    r = await target.send(valid_request(target, f"{STUDY}.9.1"))
    assert r.status == 200
    base = f"/dcm4chee-arc/aets/{AET}/rs/studies/{STUDY}/export"
    for exporter in ("ToGood", "ToBasic", "ToEnv", "ToRefused"):
        assert (await rest(target, transcript, "POST", f"{base}/{exporter}")).status == 202
    tasks = {t["ExporterID"]: t for t in await wait_done(target, transcript, 4)}
    assert tasks["ToGood"]["status"] == "COMPLETED", tasks["ToGood"]
    assert tasks["ToBasic"]["status"] == "COMPLETED", tasks["ToBasic"]
    for refused in ("ToEnv", "ToRefused"):  # the strict stowrsd answers 401
        assert tasks[refused]["outcomeMessage"].endswith("completed:0, failed:1"), tasks[refused]
    for webapp, code in (("good", 200), ("refused", 502), ("envtok", 502), ("nope", 404)):
        r = await rest(target, transcript, "POST", f"{base}/stowrs:{webapp}")
        assert r.status == code, r.body
    for path in ("", "?accept=text/csv", "/count", "/batch"):
        await rest(target, transcript, "GET", f"/dcm4chee-arc/monitor/export{path}")
    assert (await rest(target, transcript, "POST", "/dcm4chee-arc/ctrl/reload")).status == 204
    conf = target.root / "stowpair.toml"
    good_text = conf.read_text()
    conf.write_text(good_text.replace('queue = "Q"\n', 'queue = "Q"\nchunked = 1\n', 1))
    assert (await rest(target, transcript, "POST", "/dcm4chee-arc/ctrl/reload")).status == 409
    conf.write_text(good_text.replace('{ basic-auth = "', '{ chunked = "maybe", basic-auth = "'))
    assert main(["config", "check", str(conf)]) == 1
    assert (await rest(target, transcript, "POST", "/dcm4chee-arc/ctrl/reload")).status == 409
    conf.write_text(good_text)
    assert main(["config", "check", str(conf)]) == 0
    out = capsys.readouterr()
    transcript.parts += [out.out, out.err, log.read_text()]
    assert "********" in out.out  # the summary shows masked credentials
    logged = log.read_text()
    assert "authentication rejected" in logged and "config.reload_refused" in logged
    assert transcript.leaks() == []
