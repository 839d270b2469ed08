"""Bad command lines for ``twistd -n stowrsd``, ``twistd -n stowpair`` and ``stowpair``,
run as real processes: one clear error naming the option or file, no traceback.

All processes start at once (a thread pool), so the module costs a few process start
times, not one per case.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TIMEOUT = 30
REST_BUSY = """
demo_on_empty = false
[rest]
port = {port}
[emulator]
enabled = false
[archive]
storage = "archive"
database = "db.sqlite"
[logging]
json_file = "-"
"""
EMULATOR_BUSY = REST_BUSY.replace("port = {port}", "port = 0").replace(
    "enabled = false", 'enabled = true\nport = {port}\ndirectory = "emu"'
)
DIMSE_BUSY = (
    REST_BUSY.replace("port = {port}", "port = 0") + '[dimse]\nlisten = "127.0.0.1:{port}"\n'
)
STORAGE_UNDER_FILE = REST_BUSY.replace('"archive"', '"a-file/archive"').replace("{port}", "0")
LISTEN = REST_BUSY.replace("port = {port}", 'listen = "{listen}"')
#: The export work folder is a file: the archive cannot be prepared (at construction).
EXPORT_IS_A_FILE = REST_BUSY.replace('"archive"', '"blocked"').replace("{port}", "0")


@dataclass
class Case:
    argv: list[str]
    expected: str  # text the error must contain
    exit_codes: tuple[int, ...] = (1,)
    #: Only stderr is searched: a tap that ran logs the same error on stdout too.
    stderr_only: bool = False


def _cases(tmp: Path, busy: int) -> dict[str, Case]:
    stowrsd = [str(BIN / "twistd"), "-n", "--pidfile=", "stowrsd", "--json-log", "-"]
    stowpair = [str(BIN / "twistd"), "-n", "--pidfile=", "stowpair"]
    cli = [str(BIN / "stowpair")]
    a_file = str(tmp / "a-file")
    return {
        "bind-word": Case([*stowrsd, "--bind", "nope"], "--bind 'nope'"),
        "bind-port-range": Case([*stowrsd, "--bind", "127.0.0.1:99999"], "port 0-65535"),
        "bind-bad-ip": Case([*stowrsd, "--bind", "999.1.1.1:0"], "not an IP address"),
        "bind-busy": Case(
            [*stowrsd, "--bind", f"127.0.0.1:{busy}"], "stowrsd: cannot listen on", (1,), True
        ),
        "listen-word": Case([*stowrsd, "--listen", "nope"], "--listen 'nope'"),
        "listen-and-bind": Case([*stowrsd, "--listen", "tcp:0", "-b", "0"], "exclude each other"),
        "listen-busy": Case(
            [*stowrsd, "--listen", f"tcp:{busy}:interface=127.0.0.1"],
            "stowrsd: cannot listen on", (1,), True,
        ),
        "size": Case([*stowrsd, "--max-request-size", "12Q"], "size '12Q'"),
        "fail-rate": Case([*stowrsd, "--fail-rate", "2"], "--fail-rate '2'"),
        "fail-reason": Case([*stowrsd, "--fail-reason", "ZZZZ"], "--fail-reason"),
        "status-word": Case([*stowrsd, "--status", "abc"], "--status 'abc'"),
        "status-range": Case([*stowrsd, "--status", "999"], "--status 999"),
        "retry-after": Case([*stowrsd, "--retry-after", "soon"], "--retry-after 'soon'"),
        "delay-negative": Case([*stowrsd, "--delay", "-1"], "--delay '-1'"),
        "seed": Case([*stowrsd, "--seed", "x"], "--seed 'x'"),
        "syntax": Case([*stowrsd, "--accept-transfer-syntax", "Foo"], "unknown transfer syntax"),
        "ignore-unpack": Case([*stowrsd, "--ignore", "--unpack"], "exclude each other"),
        "header-workers": Case([*stowrsd, "--header-workers", "many"], "--header-workers 'many'"),
        "header-workers-range": Case(
            [*stowrsd, "--header-workers", "65"], "--header-workers '65': expected auto"
        ),
        "unknown-option": Case([*stowrsd, "--bogus"], "--bogus not recognized"),
        "tls-missing": Case([*stowrsd, "--tls-cert", str(tmp / "none.pem")], "cannot read"),
        "tls-not-pem": Case([*stowrsd, "--tls-cert", a_file], "--tls-cert"),
        "directory": Case([*stowrsd, "-d", f"{a_file}/store"], "--directory"),
        "json-log": Case([*stowrsd[:-2], "--json-log", f"{a_file}/x.json"], "--json-log"),
        "token-env": Case([*stowrsd, "--bearer-token", "env:STOWPAIR_UNSET_VAR"], "is not set"),
        "basic-file": Case([*stowrsd, "--basic-auth", f"file:{tmp}/none"], "cannot read"),
        "config-missing": Case([*stowpair, "-c", str(tmp / "none.toml")], "cannot read"),
        "config-deep": Case([*stowpair, "-c", str(tmp / "deep.toml")], "nested too deeply"),
        "config-storage": Case([*stowpair, "-c", str(tmp / "storage.toml")], "archive.storage"),
        "config-json-log": Case(
            [*stowpair, "-c", str(tmp / "ok.toml"), "--json-log", f"{a_file}/x.json"],
            "JSON log",
        ),
        "config-rest-busy": Case(
            [*stowpair, "-c", f"{tmp}/busy.toml"], "for the REST API: Address already", (1,), True
        ),
        "config-emulator-busy": Case(
            [*stowpair, "-c", f"{tmp}/emulator-busy.toml"], "for the stowrsd emulator", (1,), True
        ),
        "config-dimse-busy": Case(
            [*stowpair, "-c", f"{tmp}/dimse-busy.toml"], "for the DICOM listener", (1,), True
        ),
        "config-listen": Case(
            [*stowpair, "-c", f"{tmp}/listen-bad.toml"], 'listen "127.0.0.1:80": this is host:port'
        ),
        "config-listen-busy": Case(
            [*stowpair, "-c", f"{tmp}/listen-busy.toml"], "for the REST API: Address", (1,), True
        ),
        "listen-exposed": Case(
            [*stowpair, "-c", f"{tmp}/ok.toml", "--listen", "tcp:0"],
            '--listen "tcp:0" (every interface) is not a loopback address',
        ),
        "listen-option": Case(
            [*stowpair, "-c", f"{tmp}/ok.toml", "--emulator-listen", "tcp:x"],
            "--emulator-listen 'tcp:x': port 'x' is not a number",
        ),
        "prepare-archive": Case(
            [*stowpair, "-c", f"{tmp}/export-file.toml"],
            "stowpair: cannot create the archive folder", (1,), True,
        ),
        "stowpair-option": Case([*stowpair, "--bogus"], "--bogus not recognized"),
        "cli-command": Case([*cli, "bogus"], "invalid choice", (2,)),
        "cli-check-deep": Case([*cli, "config", "check", str(tmp / "deep.toml")], "nested", (1,)),
        "cli-export-args": Case([*cli, "export"], "required", (2,)),
        "cli-import-missing": Case(
            [*cli, "import", f"{tmp}/none", "-c", f"{tmp}/ok.toml"], "no such file or folder"
        ),
    }  # fmt: skip


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Case, subprocess.CompletedProcess[str]]]]:
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "a-file").write_text("not a folder, not PEM\n")
    (tmp / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    (tmp / "storage.toml").write_text(STORAGE_UNDER_FILE)
    (tmp / "ok.toml").write_text(REST_BUSY.replace("{port}", "0"))
    (tmp / "listen-bad.toml").write_text(LISTEN.replace("{listen}", "127.0.0.1:80"))
    (tmp / "export-file.toml").write_text(EXPORT_IS_A_FILE)
    (tmp / "blocked").mkdir()
    (tmp / "blocked" / ".export").write_text("a file where the export folder goes\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (tmp / "busy.toml").write_text(REST_BUSY.replace("{port}", str(port)))
        (tmp / "emulator-busy.toml").write_text(EMULATOR_BUSY.replace("{port}", str(port)))
        (tmp / "dimse-busy.toml").write_text(DIMSE_BUSY.replace("{port}", str(port)))
        listen_busy = LISTEN.replace("{listen}", f"tcp:{port}:interface=127.0.0.1")
        (tmp / "listen-busy.toml").write_text(listen_busy)
        cases = _cases(tmp, port)
        env = {k: v for k, v in os.environ.items() if k != "STOWPAIR_UNSET_VAR"}

        def run(case: Case) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                case.argv, cwd=tmp, env=env, capture_output=True, text=True, timeout=TIMEOUT
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            done = dict(zip(cases, pool.map(run, cases.values()), strict=True))
    yield {name: (cases[name], done[name]) for name in cases}


CASE_IDS = list(_cases(Path("/t"), 1))


@pytest.mark.parametrize("name", CASE_IDS)
def test_bad_command_line_gives_one_clear_error(
    results: dict[str, tuple[Case, subprocess.CompletedProcess[str]]], name: str
) -> None:
    """When a command line is wrong, the process ends with one error naming the
    option or file, and no traceback."""
    case, proc = results[name]
    output = proc.stderr if case.stderr_only else proc.stdout + proc.stderr
    assert "Traceback" not in output, output[-2000:]
    assert proc.returncode in case.exit_codes, (proc.returncode, output[-1500:])
    # twistd prints its usage text (option lines, deeply indented help) before the error
    error_lines = [
        line
        for line in output.splitlines()
        if case.expected in line
        and not line.startswith("    ")
        and not line.lstrip().startswith("-")
    ]
    assert len(error_lines) == 1, output[-1500:]
    if case.stderr_only:  # a tap that could not listen: that one line, nothing else
        assert proc.stderr.strip().splitlines() == error_lines, proc.stderr
