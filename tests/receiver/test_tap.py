"""stowrsd options and the emulator service factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor
from twisted.python import usage

from stowpair import tap
from stowpair.config.model import EmulatorConfig
from stowpair.receiver.service import ReceiverService, emulator_service


def test_options_build_settings() -> None:
    """When fault, size and syntax options are given, the settings carry them."""
    o = tap.StowrsdOptions()
    o.parseOptions(
        [
            "-b",
            "0",
            "--max-request-size",
            "2G",
            "--fail-rate",
            "0.5",
            "--fail-reason",
            "A700",
            "--accept-transfer-syntax",
            "JPEGLosslessSV1",
            "--seed",
            "7",
            "--path",
            "dicom-web/",
        ]
    )
    s = o["settings"]
    assert (o["host"], o["port"]) == ("127.0.0.1", 0)
    assert s.max_request_size == 2 * 1024**3 and s.path == "/dicom-web"
    assert (s.faults.fail_rate, s.faults.fail_reason, s.faults.seed) == (0.5, 0xA700, 7)
    assert s.accept_transfer_syntaxes == frozenset({"1.2.840.10008.1.2.4.70"})


@pytest.mark.parametrize(
    "args",
    [
        ["--fail-rate", "2"],
        ["--accept-transfer-syntax", "Nope"],
        ["--ignore", "-u"],
        ["--status", "42"],
        ["--header-timeout", "0"],
        ["--body-timeout", "soon"],
        ["--body-min-rate", "-1"],
        ["--idle-timeout", "-5"],
    ],
    ids=["rate", "syntax", "layouts", "status", "header", "body", "rate-neg", "idle"],
)
def test_bad_options(args: list[str]) -> None:
    """When an option is invalid, a UsageError names it."""
    with pytest.raises(usage.UsageError):
        tap.StowrsdOptions().parseOptions(args)


def test_emulator_service(tmp_path: Path) -> None:
    """When the stowpair config enables the emulator, a receiver listens where it says."""
    reactor = MemoryReactor()
    cfg = EmulatorConfig(directory=tmp_path / "emu", layout="unpack")
    service = emulator_service(cfg, reactor)
    assert isinstance(service, ReceiverService)
    service.startService()
    assert reactor.tcpServers[0][0] == 18080 and reactor.tcpServers[0][3] == "127.0.0.1"
    service.stopService()


def test_timeout_options() -> None:
    """When the slow-client options are given, the listener's bounds carry them."""
    o = tap.StowrsdOptions()
    o.parseOptions(
        ["--header-timeout", "5", "--body-timeout", "7.5", "--body-min-rate", "0",
         "--idle-timeout", "30"]
    )  # fmt: skip
    t = o["timeouts"]
    assert (t.header, t.body, t.body_min_rate, t.idle) == (5.0, 7.5, 0.0, 30.0)


JWT_OPTION_ERRORS = [
    (["--audience", "x"], "--audience needs --jwks FILE|URL or --oauth-issuer URL"),
    (["--jwks", "http://i/jwks", "--bearer-token", "t"], "exclude each other"),
    (["--oauth-issuer", "idp.example"], "expected an http:// or https:// URL"),
    (["--jwks", "http://i/jwks", "--leeway", "soon"], "--leeway 'soon': expected a number"),
    (["--jwks", "/no/such/jwks.json"], "--jwks: cannot read the JWKS file /no/such/jwks.json"),
]


@pytest.mark.parametrize(("args", "message"), JWT_OPTION_ERRORS)
def test_jwt_option_errors(tmp_path: Path, args: list[str], message: str) -> None:
    """When the token-validation options do not fit together, the UsageError says why."""
    with pytest.raises(usage.UsageError, match=message.replace("|", r"\|")):
        tap.StowrsdOptions().parseOptions([*args, "-d", str(tmp_path), "--json-log", "-"])


def test_jwt_options_build_a_validator(tmp_path: Path) -> None:
    """When --jwks names a JWK Set file, stowrsd validates tokens with its keys."""
    from stowpair.receiver.endpoints import bearer_validator
    from tests.auth.keys import Signer, write_jwks

    jwks = write_jwks(tmp_path / "jwks.json", Signer())
    o = tap.StowrsdOptions()
    o.parseOptions(
        [
            "--jwks",
            str(jwks),
            "--audience",
            "a",
            "--required-scope",
            "stow,write",
            "-d",
            str(tmp_path),
            "--json-log",
            "-",
        ]
    )
    validator = bearer_validator(o, Clock())
    assert validator is not None
    assert (validator.audience, validator.required_scopes) == ("a", ("stow", "write"))
