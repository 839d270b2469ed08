"""``stowpair config check`` and ``stowpair config import-ldif`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"


def test_check_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    """When the shipped config is checked, exit 0 and the summary shows exporter → web app → URL."""
    assert main(["config", "check", str(ROOT / "conf" / "stowpair.toml")]) == 0
    out = capsys.readouterr().out
    assert "StowExporter: stow:stowrsd, queue Export1, AE STOWPAIR" in out
    assert "-> web app stowrsd: http://127.0.0.1:18080/stowrs/studies [STOW_RS]" in out
    assert "queue Export1: parallel 1, retries 10 every PT30S x200% up to PT10M" in out
    assert "Export every study: Study -> StowExporter" in out


def test_check_errors_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When the config is invalid, each error is one stderr line and the exit status is 1."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[webapps.W]\nurl = "http://h/x"\nproperties = { concurency = 2 }\n')
    assert main(["config", "check", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f'{bad}:3: webapp "W": unknown property "concurency" (known: chunked, concurrency, '
        "transfer-syntax, bearer-token, basic-auth, allow-any-hostname, disable-trust-manager, "
        "connect-timeout, response-timeout, ca-file, tls-cert, tls-key, "
        "max-instances-per-request, max-request-bytes)"
    ]


def test_check_masks_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When a web app has a literal secret, the summary masks it."""
    path = tmp_path / "s.toml"
    path.write_text(
        '[webapps.W]\nurl = "http://h/x"\nproperties = { basic-auth = "u:s3cr3t" }\n'
        '[exporters.E]\nuri = "stow:W"\nqueue = "Q"\n[queues.Q]\n'
    )
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "basic-auth=********" in out and "s3cr3t" not in out


def test_import_to_file_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When import-ldif writes a file, config check accepts it; warnings go to stderr."""
    out = tmp_path / "out.toml"
    args = ["config", "import-ldif", str(DATA / "exporter-example.ldif"), "-o", str(out)]
    assert main(args) == 0
    assert 'warning: web app "DCM4CHEE"' in capsys.readouterr().err
    assert main(["config", "check", str(out)]) == 0


def test_import_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """When no -o is given, the TOML goes to stdout."""
    assert main(["config", "import-ldif", str(DATA / "webapps-example.ldif")]) == 0
    assert "[webapps.DCM4CHEE.properties]" in capsys.readouterr().out


def test_import_malformed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When the LDIF is malformed, one error line and exit 1, no traceback."""
    bad = tmp_path / "bad.ldif"
    bad.write_text("cn: x\n")
    assert main(["config", "import-ldif", str(bad)]) == 1
    assert capsys.readouterr().err == f"{bad}:1: an entry must start with 'dn:', not 'cn'\n"


@pytest.mark.parametrize("argv", [["--help"], ["config", "--help"], ["config", "check", "-h"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """When --help is asked, usage is printed and the exit status is 0."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 0
    assert "usage: stowpair" in capsys.readouterr().out
