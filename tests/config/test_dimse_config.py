"""``[dimse]`` and ``[remote_aes.AET]``: values, defaults and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from stowpair.config.errors import ConfigError
from stowpair.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_config(path)


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return [line.replace(str(path), "F") for line in raised.value.errors]


def test_shipped_config_listens_on_loopback_11112() -> None:
    """When conf/stowpair.toml is loaded, the C-STORE SCP is on 127.0.0.1:11112 as STOWPAIR."""
    dimse = load_config(ROOT / "conf" / "stowpair.toml").dimse
    assert dimse.enabled and dimse.ae_title == "STOWPAIR"
    assert (dimse.listener.host, dimse.listener.port) == ("127.0.0.1", 11112)
    assert dimse.accepted_calling_aets == ()


def test_absent_section_means_disabled(tmp_path: Path) -> None:
    """When there is no [dimse] table, no DICOM listener is configured."""
    assert _load(tmp_path, "").dimse.enabled is False  # type: ignore[attr-defined]


def test_values(tmp_path: Path) -> None:
    """When [dimse] and [remote_aes] are filled in, every value is read."""
    config = _load(
        tmp_path,
        '[device]\nae_titles = ["ARC", "ARC2"]\n'
        '[dimse]\nlisten = "[::1]:104"\nae_title = "ARC2"\n'
        'accepted_calling_aets = ["CT1", "MR1"]\nmax_associations = 3\nmax_pdu_length = 0\n'
        'dimse_timeout = "none"\n'
        '[remote_aes.PACS]\nhost = "pacs.example.org"\nport = 2762\nresponse_timeout = "PT2M"\n'
        'description = "the PACS"\ninstalled = false\n',
    )
    dimse = config.dimse  # type: ignore[attr-defined]
    assert (dimse.listener.host, dimse.listener.port, dimse.ae_title) == ("::1", 104, "ARC2")
    assert dimse.accepted_calling_aets == ("CT1", "MR1")
    assert (dimse.max_associations, dimse.max_pdu_length, dimse.dimse_timeout) == (3, 0, None)
    pacs = config.remote_aes["PACS"]  # type: ignore[attr-defined]
    assert (pacs.host, pacs.port, pacs.tls, pacs.response_timeout) == (
        "pacs.example.org", 2762, False, 120.0,
    )  # fmt: skip
    assert (pacs.description, pacs.installed) == ("the PACS", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[dimse]\nlisten = "11112"\n',
         'F:2: dimse: listen "11112": expected "ip:port", e.g. "127.0.0.1:11112" or '
         '"[::1]:11112" (port 0-65535)'),
        ('[dimse]\nlisten = "localhost:11112"\n',
         'F:2: dimse: listen "localhost:11112": "localhost" is not an IP address; expected '
         '"ip:port", e.g. "127.0.0.1:11112" or "[::1]:11112"'),
        ('[dimse]\nae_title = "NOT_A_LOCAL_AE"\n',
         "F:2: dimse: ae_title \"NOT_A_LOCAL_AE\" is not one of the device's ae_titles "
         "(STOWPAIR)"),
        ('[dimse]\naccepted_calling_aets = ["WAY_TOO_LONG_CALLING"]\n',
         'F:2: dimse: AE title "WAY_TOO_LONG_CALLING" has 20 characters (at most 16)'),
        ("[dimse]\nmax_pdu_length = 100\n",
         "F:2: dimse: max_pdu_length must be 0 (no limit) or at least 4096"),
        ("[dimse]\nmax_associations = 0\n",
         "F:2: dimse: max_associations must be a whole number 1-1000, not 0"),
        ('[dimse]\ntls_key = "key.pem"\n',
         "F:2: dimse: tls_key: {base}/key.pem is not a readable file"),
        ('[remote_aes.X]\nport = 104\n',
         'F:1: remote AE "X": host is required (e.g. "127.0.0.1" or "pacs.example.org")'),
        ('[remote_aes.X]\nhost = "h"\n',
         'F:1: remote AE "X": port is required (the remote AE\'s DICOM port, e.g. 104 or 11112)'),
        ('[remote_aes.X]\nhost = "h"\nport = 104\nca_file = "c.toml"\n',
         'F:1: remote AE "X": ca_file set but tls is false; set tls = true to use them'),
        ('[remote_aes.THIS_IS_TOO_LONG_X]\nhost = "h"\nport = 104\n',
         'F:1: remote AE "THIS_IS_TOO_LONG_X": AE title "THIS_IS_TOO_LONG_X" has 18 characters '
         "(at most 16)"),
    ],
    ids=["listen-no-host", "listen-hostname", "ae-not-local", "calling-too-long", "pdu-small",
         "zero-associations", "key-missing", "host-missing", "port-missing", "ca-without-tls",
         "remote-title-too-long"],
)  # fmt: skip
def test_error_lines(tmp_path: Path, text: str, expected: str) -> None:
    """When a [dimse] or [remote_aes] value is wrong, the error is one line saying where."""
    errors = _errors(tmp_path, text)
    assert expected.format(base=tmp_path) in errors, errors
