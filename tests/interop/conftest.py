"""Real peers for the interop matrix, started once per test module (``tests.support.peers``).

A peer that is not installed skips its tests with the install command, unless
``STOWPAIR_REQUIRE_PEERS=1`` (CI), where it fails them. A peer that is installed but does
not start always fails. Orthanc instances are shared by the cells of a module; the
``fresh_orthanc`` fixture deletes every study before a cell.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, JPEGLosslessSV1, JPEGLSLossless

from stowpair.archive.demo import generate_demo_study, mix_syntaxes
from tests.interop.verify import by_sop
from tests.support import peers
from tests.support.peers import OrthancServer, Peer, PeerMissing

PER_SYNTAX = 2  # instances per transfer syntax in the mixed study
#: Credentials of the Orthanc that requires HTTP Basic authentication.
ORTHANC_USER, ORTHANC_PASSWORD = "alice", "s3cret"


@contextmanager
def peers_installed() -> Iterator[None]:
    """Turn a missing peer program into a skip (a failure under STOWPAIR_REQUIRE_PEERS=1)."""
    try:
        yield
    except PeerMissing as e:
        if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
            pytest.fail(f"{e}, and STOWPAIR_REQUIRE_PEERS=1")
        pytest.skip(str(e))


def _orthanc(tmp: pytest.TempPathFactory, settings: OrthancServer | None = None) -> Peer:
    with peers_installed():
        return peers.start_orthanc(tmp.mktemp("orthanc"), settings)


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """Orthanc + DICOMweb plugin without authentication, shared by a module's cells."""
    peer = _orthanc(tmp_path_factory)
    yield peer
    peer.stop()


@pytest.fixture
def fresh_orthanc(orthanc: Peer) -> Peer:
    """The module's Orthanc, emptied of every study."""
    peers.orthanc_clear(orthanc)
    return orthanc


@pytest.fixture(scope="module")
def orthanc_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """Orthanc requiring HTTP Basic ``alice:s3cret`` (its REST calls here send them)."""
    settings = OrthancServer(
        extra={
            "AuthenticationEnabled": True,
            "RegisteredUsers": {ORTHANC_USER: ORTHANC_PASSWORD},
        }
    )
    peer = _orthanc(tmp_path_factory, settings)
    yield peer
    peer.stop()


@dataclass(frozen=True)
class TLSFronts:
    """socat TLS fronts of one Orthanc; ``ca_file`` trusts ``good`` and ``wrong_hostname``."""

    ca_file: Path
    ports: dict[str, int]  # good, wrong-hostname, untrusted


@pytest.fixture(scope="module")
def tls_fronts(tmp_path_factory: pytest.TempPathFactory, orthanc: Peer) -> Iterator[TLSFronts]:
    """Three fronts: good (SAN 127.0.0.1 from our CA),
    wrong-hostname (SAN other.example, our CA), untrusted (SAN 127.0.0.1, another CA)."""
    folder = tmp_path_factory.mktemp("tls")
    ca, other_ca = trustme.CA(), trustme.CA()
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    leaves = {
        "good": ca.issue_cert("127.0.0.1"),
        "wrong-hostname": ca.issue_cert("other.example"),
        "untrusted": other_ca.issue_cert("127.0.0.1"),
    }
    fronts: list[Peer] = []
    try:
        for name, leaf in leaves.items():
            pem = folder / f"{name}.pem"
            leaf.private_key_and_cert_chain_pem.write_to_path(str(pem))
            with peers_installed():
                fronts.append(peers.start_socat_tls(folder / name, orthanc.port, pem))
        yield TLSFronts(ca_file, {n: f.port for n, f in zip(leaves, fronts, strict=True)})
    finally:
        for front in fronts:
            front.stop()


@pytest.fixture(scope="module")
def stowrsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """``twistd -n stowrsd`` storing by UID under ``<workdir>/store``, path ``/dicom-web``."""
    work = tmp_path_factory.mktemp("stowrsd")
    port = peers.free_port()
    args = ["-b", f"127.0.0.1:{port}", "-d", str(work / "store"), "--path", "/dicom-web"]
    args += ["--no-fsync", "--json-log", str(work / "stowrsd.json")]
    peer = peers.start_twistd(work, "stowrsd", args, port)
    yield peer
    peer.stop()


#: Syntaxes pydicom cannot write, made with dcmtk: program, args.
DCMTK_SYNTAXES = {
    JPEGLosslessSV1: ("dcmcjpeg", "+e1"),
    JPEGLSLossless: ("dcmcjpls",),
}


@pytest.fixture(scope="module")
def mixed_study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One study, one series per transfer syntax: those of ``mix_syntaxes()`` plus JPEG
    Lossless SV1 and JPEG-LS (when pydicom cannot write it) made by dcmtk; by SOP UID."""
    syntaxes = mix_syntaxes()
    extra = [ts for ts in DCMTK_SYNTAXES if ts not in syntaxes]
    folder = tmp_path_factory.mktemp("mixed")
    series = (*syntaxes, *[ExplicitVRLittleEndian] * len(extra))
    files = generate_demo_study(folder, PER_SYNTAX * len(series), 12, 7, series)
    for k, ts in enumerate(extra, start=len(syntaxes)):
        for path in files[k :: len(series)]:
            with peers_installed():
                program = peers.require(DCMTK_SYNTAXES[ts][0], "dcmtk")
            args = [program, *DCMTK_SYNTAXES[ts][1:], str(path), str(path)]
            subprocess.run(args, check=True, capture_output=True)
            assert dcmread(path).file_meta.TransferSyntaxUID == ts
    return by_sop(files)
