"""``[rest.auth]`` on the running service (real loopback sockets): every route under the
REST listener needs credentials, except those configured open; the CLI sends them."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import reactor as _reactor
from twisted.internet.task import Cooperator
from twisted.internet.threads import deferToThread

from stowpair.archive.demo import generate_demo_study
from stowpair.auth.passwords import hash_password
from stowpair.config.loader import load_config
from stowpair.exporter.body import BodyPart, MultipartRelatedProducer
from stowpair.service import StowpairService
from tests.auth.keys import AUDIENCE, ISSUER, Signer, write_jwks
from tests.service.test_end_to_end import CONFIG

reactor: Any = _reactor
STUDY = "1.2.826.0.1.3680043.8.498.1"
AUTH = """
[rest.auth]
type = "basic"
[rest.auth.users]
alice = "{hash}"
"""
#: Routes behind the guard: REST reads and writes, the console and an event stream
#: (whatever serves them), the metrics, a path that does not exist.
PROTECTED = [
    ("GET", "/dcm4chee-arc/monitor/export"),
    ("POST", f"/dcm4chee-arc/aets/E2E/rs/studies/{STUDY}/export/ToDest"),
    ("DELETE", "/dcm4chee-arc/monitor/export/1"),
    ("POST", "/dcm4chee-arc/ctrl/reload"),
    ("GET", "/ui/"),
    ("GET", "/ui/js/app.js"),
    ("GET", "/ui/events"),
    ("GET", "/dcm4chee-arc/aets/E2E/rs/studies"),
    ("GET", "/dcm4chee-arc/ctrl/config"),
    ("GET", "/metrics"),
    ("GET", "/no/such/path"),
    ("GET", "/"),
]


def credentials(pair: str = "alice:s3cret") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


@pytest.fixture
def service(tmp_path: Path) -> Any:
    conf = tmp_path / "stowpair.toml"
    text = CONFIG.format(url="http://127.0.0.1:9/stowrs")
    conf.write_text(text + AUTH.format(hash=hash_password("s3cret", ln=4)))
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    yield service
    pytest_twisted.blockon(service.stopService())


def url(service: Any, path: str) -> str:
    return f"http://127.0.0.1:{service.rest_port.getHost().port}{path}"


async def call(service: Any, method: str, path: str, **kw: Any) -> Any:
    await service.ready
    response = await treq.request(method, url(service, path), reactor=reactor, **kw)
    response.body = await response.content()
    return response


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest_twisted.ensureDeferred
async def test_no_credentials_401(service: Any, method: str, path: str) -> None:
    """When a protected route is asked for without credentials, the answer is 401 with a
    Basic challenge and a JSON reason, whatever the route."""
    response = await call(service, method, path)
    assert response.code == 401
    assert response.headers.getRawHeaders("WWW-Authenticate") == [
        'Basic realm="stowpair", charset="UTF-8"'
    ]
    assert b"authentication required" in response.body


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest_twisted.ensureDeferred
async def test_wrong_password_401(service: Any, method: str, path: str) -> None:
    """When the password is wrong, every protected route answers 401."""
    response = await call(service, method, path, headers=credentials("alice:guess"))
    assert response.code == 401
    assert b"wrong user name or password" in response.body


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/dcm4chee-arc/monitor/export", 200),
        ("GET", "/metrics", 200),
        ("GET", "/health", 200),
        ("GET", "/dcm4chee-arc/monitor/export/count", 200),
        ("GET", "/ui/", 200),
        ("GET", "/ui/js/app.js", 200),
        ("GET", "/", 302),
        ("GET", "/dcm4chee-arc/aets/E2E/rs/studies", 200),
        ("GET", "/no/such/path", 404),
    ],
)
@pytest_twisted.ensureDeferred
async def test_with_credentials(service: Any, method: str, path: str, status: int) -> None:
    """When the right credentials are sent, the route answers as without authentication
    (200; the redirect of / to the console; 404 where nothing is)."""
    response = await call(service, method, path, headers=credentials(), allow_redirects=False)
    assert response.code == status


@pytest_twisted.ensureDeferred
async def test_health_is_open_by_default(service: Any) -> None:
    """When /health is asked for without credentials, it answers 200 (health = open)."""
    assert (await call(service, "GET", "/health")).code == 200


@pytest_twisted.ensureDeferred
async def test_upload_waits_for_the_password_check(service: Any, tmp_path: Path) -> None:
    """When a STOW-RS upload to the ingest carries credentials not checked yet, its body
    waits for the check and is then stored (200); without credentials it is refused
    before the body is read (401)."""
    files = generate_demo_study(tmp_path / "src", 3, size_kb=64, seed=21)

    async def post(headers: dict[str, str]) -> Any:
        parts = [BodyPart(p, "1.2.840.10008.1.2.1", p.stat().st_size) for p in files]
        producer = MultipartRelatedProducer(parts, Cooperator())
        return await call(service, "POST", "/dcm4chee-arc/aets/E2E/rs/studies", data=producer,
                          headers={"Content-Type": producer.content_type, **headers})  # fmt: skip

    assert (await post({})).code == 401
    stored = await post(credentials())
    assert stored.code == 200, stored.body
    assert stored.body.count(b"00081155") == 3  # ReferencedSOPInstanceUID of each


@pytest.mark.parametrize(
    ("argv", "env", "code"),
    [
        (["--user", "alice:s3cret"], {}, 0),
        ([], {"STOWPAIR_USER": "alice:s3cret"}, 0),
        ([], {}, 1),
        (["--user", "alice:guess"], {}, 1),
    ],
    ids=["option", "variable", "none", "wrong"],
)
@pytest_twisted.ensureDeferred
async def test_cli_authenticates(
    service: Any, argv: list[str], env: dict[str, str], code: int
) -> None:
    """When `stowpair tasks` is given the credentials (option or variable), it lists the
    tasks (exit 0); without or with a wrong password it exits 1 and says what to pass."""
    await service.ready
    cli = str(Path(sys.executable).with_name("stowpair"))
    run = await deferToThread(
        subprocess.run,
        [cli, "tasks", "--url", url(service, ""), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "STOWPAIR_USER": "", **env},
    )
    assert run.returncode == code, run.stderr
    if code:
        assert "HTTP 401" in run.stderr and "--user USER[:PASSWORD]" in run.stderr
    else:
        assert run.stdout.startswith("ID")


@pytest_twisted.ensureDeferred
async def test_reload_applies_new_users(service: Any) -> None:
    """When [rest.auth.users] gets a new hash and the configuration is reloaded, the old
    password is refused and the new one accepted, without a restart."""
    await service.ready
    conf = service.config_path
    conf.write_text(
        conf.read_text().split("[rest.auth]")[0] + AUTH.format(hash=hash_password("n3w", ln=4))
    )
    reloaded = await call(service, "POST", "/dcm4chee-arc/ctrl/reload", headers=credentials())
    assert reloaded.code == 204
    old = await call(service, "GET", "/dcm4chee-arc/monitor/export", headers=credentials())
    new = await call(
        service, "GET", "/dcm4chee-arc/monitor/export", headers=credentials("alice:n3w")
    )
    assert (old.code, new.code) == (401, 200)


@pytest_twisted.ensureDeferred
async def test_bearer_tokens(tmp_path: Path) -> None:
    """When [rest.auth] is of type bearer, a valid JWT gets 200, none a 401 with a Bearer
    challenge, a token without the required scope 403 insufficient_scope."""
    signer = Signer()
    write_jwks(tmp_path / "jwks.json", signer)
    conf = tmp_path / "stowpair.toml"
    conf.write_text(
        CONFIG.format(url="http://127.0.0.1:9/stowrs")
        + '[rest.auth]\ntype = "bearer"\njwks = "jwks.json"\n'
        + f'oauth-issuer = "{ISSUER}"\naudience = "{AUDIENCE}"\nrequired-scope = "admin"\n'
    )
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    try:
        now = reactor.seconds()
        answers = []
        for token in (signer.token(now, 60, scope="admin"), None, signer.token(now, 60)):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answers.append(await call(service, "GET", "/dcm4chee-arc/monitor/export",
                                      headers=headers))  # fmt: skip
    finally:
        await service.stopService()
    assert [a.code for a in answers] == [200, 401, 403]
    assert answers[1].headers.getRawHeaders("WWW-Authenticate") == [
        'Bearer realm="stowpair", scope="admin"'
    ]
    assert 'error="insufficient_scope"' in answers[2].headers.getRawHeaders("WWW-Authenticate")[0]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "http://evil.example"}, 403),
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": "null"}, 403),
        ({}, 202),
    ],
    ids=["other origin", "sec-fetch-site", "opaque origin", "same client, no origin"],
)
@pytest_twisted.ensureDeferred
async def test_credentials_do_not_lift_the_cross_site_refusal(
    service: Any, headers: dict[str, str], status: int
) -> None:
    """When a browser sends its cached credentials with a POST from another site's page,
    the export trigger is refused (403) as without authentication; a client without
    Origin (curl, the CLI) is served."""
    path = f"/dcm4chee-arc/aets/E2E/rs/studies/{STUDY}/export/ToDest"
    response = await call(service, "POST", path, headers={**credentials(), **headers})
    assert response.code == status, response.body


@pytest_twisted.ensureDeferred
async def test_cross_site_upload_with_credentials_is_refused(service: Any, tmp_path: Path) -> None:
    """When an upload to the ingest carries right but unchecked credentials and another
    site's Origin, it is refused 403 once the credentials are checked, before its body
    is stored."""
    files = generate_demo_study(tmp_path / "src", 2, size_kb=16, seed=22)
    parts = [BodyPart(p, "1.2.840.10008.1.2.1", p.stat().st_size) for p in files]
    producer = MultipartRelatedProducer(parts, Cooperator())
    response = await call(service, "POST", "/dcm4chee-arc/aets/E2E/rs/studies", data=producer,
                          headers={"Content-Type": producer.content_type,
                                   "Origin": "http://evil.example", **credentials()})  # fmt: skip
    assert response.code == 403
    assert service.config.archive.storage == tmp_path / "var" / "archive"
    assert not list(service.config.archive.storage.rglob("*.dcm"))


@pytest_twisted.ensureDeferred
async def test_console_open(tmp_path: Path) -> None:
    """When console = "open", the console's files and / answer without credentials while
    the API it calls still needs them."""
    conf = tmp_path / "stowpair.toml"
    text = CONFIG.format(url="http://127.0.0.1:9/stowrs")
    auth = AUTH.format(hash=hash_password("s3cret", ln=4)).replace(
        'type = "basic"', 'type = "basic"\nconsole = "open"'
    )
    conf.write_text(text + auth)
    service = StowpairService(load_config(conf), reactor)
    service.startService()
    try:
        codes = [
            (await call(service, "GET", path, allow_redirects=False)).code
            for path in ("/ui/", "/ui/js/app.js", "/", "/dcm4chee-arc/monitor/export")
        ]
    finally:
        await service.stopService()
    assert codes == [200, 200, 302, 401]
