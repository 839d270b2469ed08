"""Bad configuration files through ``stowpair config check`` (in process): exit 1,
every line names the file, no traceback. tests/config/test_loader.py checks the exact
lines of ordinary mistakes; these are the hostile files (nesting, encodings, sizes),
and a hypothesis fuzz that mutates the shipped configuration as text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.cli import main
from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config
from tests.badinput.servers import fuzz

SHIPPED = Path(__file__).parents[2] / "conf" / "stowpair.toml"

WEBAPP = b'[webapps.W]\nurl = "http://h/x"\n'
BAD = [
    # (id, file content, text in the error)
    ("deep-arrays", b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ("deep-tables", b"a = " + b"{b = " * 3000 + b"1" + b"}" * 3000 + b"\n", "nested too deeply"),
    ("latin-1", "[device]\nname = \"caf\u00e9\"\n".encode("latin-1"), "not UTF-8"),
    ("binary", bytes(range(256)) * 4, "not UTF-8"),
    ("nul", b'[device]\nname = "a\x00b"\n', "not valid TOML"),
    ("utf-16", "[device]\n".encode("utf-16"), "not UTF-8"),
    ("unterminated", b'[device]\nname = "abc\n', "not valid TOML"),
    ("duplicate-key", b"[rest]\nport = 1\nport = 2\n", "not valid TOML"),
    ("duplicate-table", b"[rest]\n[rest]\n", "not valid TOML"),
    ("table-vs-array", b"[rules]\n[[rules]]\n", "not valid TOML"),
    ("port-huge", b"[rest]\nport = 99999999999999999999999999999\n", "port"),
    ("port-inf", b"[rest]\nport = inf\n", "port"),
    ("port-nan", b"[rest]\nport = nan\n", "port"),
    ("port-string", b'[rest]\nport = "8080; rm -rf /"\n', "port"),
    ("ae-empty", b'[device]\nae_titles = [""]\n', "ae_titles"),
    ("ae-long", b'[device]\nae_titles = ["' + b"A" * 300 + b'"]\n', "AE title"),
    ("top-scalar-section", b'device = "x"\n', "device"),
    ("unknown-top", b"[nope]\n", "nope"),
    ("rules-not-list", b'rules = "all"\n', "rules"),
    ("secret-file", WEBAPP + b'properties = { basic-auth = "file:/none/pw" }\n', "secret"),
    ("duration-huge", b'[queues.Q]\nretry_delay = "PT1e308S"\n', "retry_delay"),
    ("schedule-huge", b'[queues.Q]\nschedules = ["hour=99999999999999999999"]\n', "hour"),
    ("url-bracket", b'[webapps.W]\nurl = "http://[::1"\n', "url"),
    ("url-port", b'[webapps.W]\nurl = "http://h:99999999999999999999/x"\n', "url"),
    ("timeout-nan", WEBAPP + b'properties = { connect-timeout = "nan" }\n', "connect-timeout"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "text"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_file_gives_error_lines_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, text: str
) -> None:
    """When the configuration file is hostile, `config check` exits 1 with error lines
    naming the file, and no traceback."""
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines and all(line.startswith(f"{path}") for line in lines), lines
    assert any(text in line for line in lines), lines
    assert "Traceback" not in out.err + out.out


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_path_gives_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """When the path is missing or a folder, `config check` says so in one line."""
    path = tmp_path / "conf.toml"
    if kind == "directory":
        path.mkdir()
    assert main(["config", "check", str(path)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """When an editor saved the file with a UTF-8 byte order mark, it still loads."""
    path = tmp_path / "bom.toml"
    path.write_bytes(
        b"\xef\xbb\xbf" + SHIPPED.read_bytes().replace(b'base_dir = ".."', b'base_dir = "."')
    )
    assert load_config(path).device.name == "stowpair"


# -- fuzzed text ---------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    ['"', "'", "[", "]", "{", "}", "=", "\n", "\\", "\x00", "#", ".", ",", '"""', "[[", "\ufeff",
     "inf", "-1", "99999999999999999999", "true", '"env:NOPE"', '"file:/nope"', "PT", "P1W",
     "hour=25", "stow:", "\u00e9", "\t", " "]
)  # fmt: skip


@st.composite
def mutated_config(draw: st.DrawFn) -> str:
    """The shipped configuration with a few lines deleted, duplicated or spliced."""
    lines = SHIPPED.read_text().replace('base_dir = ".."', 'base_dir = "."').splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "splice", "replace-value", "cut"]))
        if op == "delete":
            del lines[at]
        elif op == "duplicate":
            lines.insert(at, lines[at])
        elif op == "splice":
            col = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:col] + draw(_TOKENS) + lines[at][col:]
        elif op == "replace-value" and "=" in lines[at]:
            key = lines[at].split("=", 1)[0]
            lines[at] = key + "= " + draw(st.one_of(_TOKENS, st.text(max_size=12)))
        elif op == "cut":
            lines = lines[:at]
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@fuzz(300)
@given(text=mutated_config())
def test_mutated_config_gives_config_or_error_lines(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """When the shipped file is mutated at random, loading gives a Config or ConfigError
    lines that each name the file; never another exception."""
    path = tmp_path_factory.getbasetemp() / "mutated.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as e:
        assert e.errors and all(
            line.startswith(str(path)) and "\n" not in line for line in e.errors
        ), e.errors
