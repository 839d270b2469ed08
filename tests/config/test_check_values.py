"""``stowpair config check``: effective property values, and warnings for secrets that
cannot be resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.cli import main

BASE = '[exporters.E]\nuri = "stow:W"\nqueue = "Q"\n[queues.Q]\n[webapps.W]\nurl = "http://h/x"\n'


def check(tmp_path: Path, extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    path = tmp_path / "c.toml"
    path.write_text(BASE + extra)
    assert main(["config", "check", str(path)]) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_defaults_are_shown_as_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When a web app sets no property, every property is shown with its effective value."""
    out, err = check(tmp_path, "", capsys)
    assert (
        "properties: chunked=false concurrency=1 transfer-syntax=* (as stored) bearer-token=-"
        " basic-auth=- allow-any-hostname=false disable-trust-manager=false"
    ) in out
    assert (
        "additions: connect-timeout=none (Twisted's 30 s per attempt)"
        " response-timeout=300 (default) ca-file=- (system CAs) tls-cert=- tls-key=-"
        " max-instances-per-request=1"
        " max-request-bytes=- (no cap)"
    ) in out
    assert "(defaults)" not in out and err == ""


def test_set_values_are_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When properties are set, their values are shown (keywords resolved to UIDs)."""
    props = (
        'properties = { chunked = "true", concurrency = 4, transfer-syntax ='
        ' "ExplicitVRLittleEndian", response-timeout = 0, connect-timeout = "PT5S" }\n'
    )
    out, _ = check(tmp_path, props, capsys)
    assert "chunked=true concurrency=4 transfer-syntax=1.2.840.10008.1.2.1 " in out
    assert "connect-timeout=5 response-timeout=none " in out


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("env:STOWPAIR_TEST_UNSET", "environment variable STOWPAIR_TEST_UNSET is not set"),
        ("env:STOWPAIR_TEST_EMPTY", "it is empty"),
        ("file:empty-token.txt", "it is empty"),
    ],
    ids=["env-unset", "env-empty", "file-empty"],
)
def test_unresolvable_secret_is_a_warning(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    says: str,
) -> None:
    """When a bearer-token names an unset or empty variable or an empty file, check still
    exits 0 but says OK with a warning naming the web app, key and reference (a file that
    does not exist is an error of the configuration)."""
    monkeypatch.delenv("STOWPAIR_TEST_UNSET", raising=False)
    monkeypatch.setenv("STOWPAIR_TEST_EMPTY", "")
    (tmp_path / "empty-token.txt").write_text("\n")
    out, err = check(tmp_path, f'properties = {{ bearer-token = "{value}" }}\n', capsys)
    assert ": OK, 1 warning (on stderr) (paths relative to" in out.splitlines()[0]
    [line] = err.splitlines()
    assert line.startswith(f"warning: webapp W: bearer-token = '{value}': {says}")


def test_resolvable_secret_is_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the variable is set and the file readable, there is no warning."""
    monkeypatch.setenv("STOWPAIR_TEST_SET", "t0ken")
    (tmp_path / "pw.txt").write_text("u:p\n")
    props = 'properties = { bearer-token = "env:STOWPAIR_TEST_SET", basic-auth = "file:pw.txt" }\n'
    out, err = check(tmp_path, props, capsys)
    assert err == "" and "t0ken" not in out
    assert "bearer-token=env:STOWPAIR_TEST_SET basic-auth=file:pw.txt" in out


def test_response_timeout_zero_means_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When response-timeout is 0, the exporter waits without limit (and check says none),
    while an absent one is the 300 s default."""
    from stowpair.config.loader import load_config
    from stowpair.exporter.client import idle_timeout_of

    out, _ = check(tmp_path, "properties = { response-timeout = 0 }\n", capsys)
    assert " response-timeout=none " in out
    assert idle_timeout_of(load_config(tmp_path / "c.toml").webapps["W"]) is None
