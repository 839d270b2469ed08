"""The console log of the taps: ``--log-level``, and what counts as DEBUG."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.logger import LogLevel, formatEvent
from twisted.python import usage
from twisted.scripts.twistd import ServerOptions

from stowpair import console
from tests.support.peers import free_port

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    ("text", "level"),
    [("debug", LogLevel.debug), ("INFO", LogLevel.info), ("warn", LogLevel.warn),
     ("warning", LogLevel.warn), ("error", LogLevel.error), (" critical ", LogLevel.critical)],
)  # fmt: skip
def test_levels(text: str, level: LogLevel) -> None:
    """When a level name is given in any case, it is understood."""
    assert console.parse_level(text) is level


def test_bad_level_names_the_choices() -> None:
    """When the level is unknown, the error names the option and the choices."""
    with pytest.raises(usage.UsageError, match="--log-level 'loud': expected one of debug"):
        console.parse_level("loud")


@pytest.mark.parametrize(
    ("event", "level"),
    [
        ({"log_format": "Starting factory {factory!r}", "log_level": LogLevel.info},
         LogLevel.debug),
        ({"log_format": "Stopping factory {factory!r}", "log_level": LogLevel.info},
         LogLevel.debug),
        ({"log_format": "{log_text}", "log_text": "_Site starting on 8080",
          "log_level": LogLevel.info}, LogLevel.debug),
        ({"log_format": "{log_text}", "log_text": "(TCP Port 8080 Closed)",
          "log_level": LogLevel.info}, LogLevel.debug),
        ({"log_format": "Task {task_id}", "log_level": LogLevel.info}, LogLevel.info),
        ({"log_format": "x", "log_level": LogLevel.error}, LogLevel.error),
    ],
    ids=["factory-start", "factory-stop", "port-start", "port-closed", "task", "error"],
)  # fmt: skip
def test_effective_level(event: dict[str, Any], level: LogLevel) -> None:
    """When Twisted announces a factory or a port, the console treats it as DEBUG."""
    assert console.effective_level(event) is level


def _twistd_options(*argv: str) -> ServerOptions:
    options = ServerOptions()
    options.parseOptions(list(argv))
    return options


@pytest.mark.parametrize("tap", ["stowrsd", "stowpair"])
def test_log_level_filters_the_console(tmp_path: Path, tap: str) -> None:
    """When a tap gets --log-level warn, twistd's log observer writes WARN and above only."""
    log = tmp_path / "console.log"
    conf = tmp_path / "s.toml"
    conf.write_text('base_dir = "."\n[logging]\njson_file = "-"\n')
    args = ["-b", "0", "-d", str(tmp_path)] if tap == "stowrsd" else ["-c", str(conf)]
    options = _twistd_options("-n", "-l", str(log), tap, *args, "--log-level", "warn")
    observer = options["logger"]()
    for level in (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error):
        observer({"log_format": f"a {level.name} line", "log_level": level, "log_time": 0.0,
                  "log_namespace": "test"})  # fmt: skip
    lines = log.read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["a warn line", "a error line"]


def test_operators_logger_is_kept(tmp_path: Path) -> None:
    """When the operator chose --logger, --log-level leaves it alone."""
    options = _twistd_options(
        "-n", "--logger", "twisted.logger.textFileLogObserver", "stowrsd", "-b", "0",
        "-d", str(tmp_path), "--log-level", "debug",
    )  # fmt: skip
    assert options["logger"].__name__ == "textFileLogObserver"


def test_access_log_is_a_debug_event() -> None:
    """When a request finishes, the Site's access log line is a DEBUG http.access event."""
    from twisted.logger import globalLogPublisher
    from twisted.web.test.requesthelper import DummyRequest

    seen: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(seen.append)
    try:
        request = DummyRequest([b"x"])
        request.uri = b"/dcm4chee-arc/monitor/export"
        request.code = 200
        request.sentLength = 12
        console.AccessLogAtDebug().log(request)
    finally:
        globalLogPublisher.removeObserver(seen.append)
    [event] = [e for e in seen if e.get("event") == "http.access"]
    assert event["log_level"] is LogLevel.debug
    assert formatEvent(event).endswith("GET /dcm4chee-arc/monitor/export 200 12 -")


CONFIG = """\
base_dir = "."
demo_on_empty = true
[device]
task_polling_interval = "PT1S"
[rest]
port = {rest}
[emulator]
port = {emulator}
directory = "var/stowrsd"
[archive]
storage = "var/archive"
database = "var/stowpair.sqlite"
[logging]
json_file = "var/log/stowpair.json"
[webapps.stowrsd]
url = "http://127.0.0.1:{emulator}/stowrs"
[exporters.StowExporter]
uri = "stow:stowrsd"
queue = "Export1"
[queues.Export1]
[[rules]]
name = "Export every study"
entity = "Study"
exporters = ["StowExporter"]
delay = "PT1S"
"""


def _console_of_demo(tmp_path: Path, *options: str) -> list[str]:
    """stdout of ``twistd -n stowpair`` on a fresh folder until the demo study's export
    completed (the shipped configuration's demo and rule, on free ports)."""
    tmp_path.mkdir()
    conf = tmp_path / "stowpair.toml"
    conf.write_text(CONFIG.format(rest=free_port(), emulator=free_port()))
    argv = [str(BIN / "twistd"), "-n", "--pidfile=", "stowpair", "-c", str(conf), *options]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "IN PROCESS -> COMPLETED" in line or time.monotonic() > deadline:
                break
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert "IN PROCESS -> COMPLETED" in lines[-1], "\n".join(lines[-20:])
    return lines


@pytest.mark.slow
def test_demo_export_at_info_has_no_per_instance_lines(tmp_path: Path) -> None:
    """When the 20-instance demo study is loaded and exported at INFO, the console holds
    one line per request received and per task transition: no per-instance lines, no
    access log, no factory notices; at DEBUG they are all there."""
    lines = _console_of_demo(tmp_path / "info")
    text = "\n".join(lines)
    for noise in ("Stored part", "Received ", "Starting factory", '"POST ', "starting on"):
        assert noise not in text, noise
    requests = [line for line in lines if re.search(r"POST /stowrs/studies from .*: 200", line)]
    assert len(requests) == 20
    assert len(lines) <= 40, text
    debug = "\n".join(_console_of_demo(tmp_path / "debug", "--log-level", "debug"))
    for detail in ("Stored part", "Received ", "Starting factory", "POST http://"):
        assert detail in debug, detail
