"""Importing files and folders (stowpair.archive.importer and ``stowpair import``)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor

from stowpair.archive.demo import generate_demo_study
from stowpair.archive.importer import Importer, ImportSummary
from stowpair.archive.index import SQLiteIndex
from stowpair.archive.store import NotStorable, read_header
from tests.archive.conftest import FILES_BY_SYNTAX, all_bundled_files, bundled
from tests.badinput.dicomparts import CT_IMAGE, Uids, instance


async def run_import(index: SQLiteIndex, storage: Path, *paths: Path) -> ImportSummary:
    importer = Importer(storage, index, reactor, reactor, reactor.getThreadPool(), fsync=False)
    return await importer.run(list(paths))


def snapshot(storage: Path, database: Path) -> tuple[object, ...]:
    files = sorted(
        (str(p), p.stat().st_ino, p.stat().st_mtime_ns) for p in storage.rglob("*") if p.is_file()
    )
    conn = sqlite3.connect(database)
    try:
        rows = sorted(conn.execute("SELECT * FROM instance"))
        studies = sorted(conn.execute("SELECT * FROM study"))
    finally:
        conn.close()
    return files, rows, studies


@pytest.mark.parametrize(("ts", "name"), sorted(FILES_BY_SYNTAX.items()), ids=lambda v: v)
@pytest_twisted.ensureDeferred
async def test_import_each_transfer_syntax(
    index: SQLiteIndex, tmp_path: Path, ts: str, name: str
) -> None:
    """When a bundled file of each transfer syntax is imported, it is stored byte for byte
    and indexed with that syntax."""
    summary = await run_import(index, tmp_path / "archive", bundled(name))
    assert (summary.instances, summary.new, summary.skipped) == (1, 1, [])
    header = read_header(bundled(name))
    [r] = (await index.query(header.study_uid)).instances
    assert r.transfer_syntax_uid == ts
    assert r.path.read_bytes() == bundled(name).read_bytes()


@pytest_twisted.ensureDeferred
async def test_import_all_bundled_files(index: SQLiteIndex, tmp_path: Path) -> None:
    """When pydicom's whole test folder is imported, every file is accounted for and every
    distinct readable SOP Instance is indexed once."""
    files = all_bundled_files()
    folders = sorted({f.parent for f in files})
    top = Path(os.path.commonpath(folders))
    summary = await run_import(index, tmp_path / "archive", top)
    assert summary.files == len(files)
    assert summary.instances + len(summary.skipped) == summary.files
    expected: set[str] = set()
    readable: set[Path] = set()
    for f in files:
        try:
            expected.add(read_header(f).sop_instance_uid)
            readable.add(f)
        except NotStorable:
            pass
    assert await index.count() == summary.new == len(expected)
    # pydicom reuses SOP Instance UIDs across syntaxes: those are the only readable skips.
    for path, reason in summary.skipped:
        assert path not in readable or "already stored with different content" in reason


@pytest_twisted.ensureDeferred
async def test_import_twice_changes_nothing(index: SQLiteIndex, tmp_path: Path) -> None:
    """When the same folder is imported twice, the second run finds nothing new and no file
    or index row changes."""
    source, storage = tmp_path / "src", tmp_path / "archive"
    generate_demo_study(source, 6, 8, seed=3)
    first = await run_import(index, storage, source)
    before = snapshot(storage, index.database)
    second = await run_import(index, storage, source)
    assert (first.new, second.new, second.instances, second.skipped) == (6, 0, 6, [])
    assert snapshot(storage, index.database) == before


@pytest_twisted.ensureDeferred
async def test_bad_files_are_skipped_with_reasons(index: SQLiteIndex, tmp_path: Path) -> None:
    """When a folder holds non-DICOM, truncated and missing paths, each is skipped with its
    reason and the good instance is still imported."""
    source = tmp_path / "src" / "nested" / "deeper"
    source.mkdir(parents=True)
    shutil.copy(bundled("CT_small.dcm"), source / "good.dcm")
    (source / "notes.txt").write_text("not dicom")
    cut = bundled("MR_small.dcm").read_bytes()
    (source / "cut.dcm").write_bytes(cut[: len(cut) - 100])
    summary = await run_import(
        index, tmp_path / "archive", tmp_path / "src", tmp_path / "nowhere.dcm"
    )
    reasons = {p.name: r for p, r in summary.skipped}
    assert (summary.files, summary.instances) == (4, 1)
    assert reasons["notes.txt"].startswith("not a DICOM Part 10 file")
    assert reasons["cut.dcm"].startswith("truncated")
    assert reasons["nowhere.dcm"] == "no such file or folder"


_ROOT = "1.2.826.0.1.3680043.8.498.88"


@pytest.mark.parametrize(
    ("uids", "reason"),
    [
        (Uids(CT_IMAGE, "1.2.3\n", f"{_ROOT}.1", f"{_ROOT}.1.1"), "SOPInstanceUID '1.2.3\\n'"),
        (Uids(CT_IMAGE, "1.2.34 ", f"{_ROOT}.2", f"{_ROOT}.2.1"), "contains ' '"),
        (Uids(CT_IMAGE, f"{_ROOT}.3.2", f"{_ROOT}.3\t", f"{_ROOT}.3.1"), "StudyInstanceUID"),
        (Uids(CT_IMAGE, f"{_ROOT}.4.2", f"{_ROOT}.4", "1.2.3\x00\x00"), "SeriesInstanceUID"),
        (Uids(CT_IMAGE, f"{_ROOT}.5.2", f"{_ROOT}.5", f"{_ROOT}.05"), "leading zero"),
    ],
    ids=["newline", "space", "tab", "two-nuls", "leading-zero"],
)
@pytest_twisted.ensureDeferred
async def test_invalid_uid_is_skipped(
    index: SQLiteIndex, tmp_path: Path, uids: Uids, reason: str
) -> None:
    """When a file's UID breaks PS3.5 §9.1 (control character, whitespace, two NULs,
    leading zero), it is skipped with the reason and nothing is stored under it."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.dcm").write_bytes(instance(uids))
    summary = await run_import(index, tmp_path / "archive", tmp_path / "src")
    [(_, why)] = summary.skipped
    assert summary.instances == 0 and reason in why and "PS3.5" in why
    assert not list((tmp_path / "archive").rglob("*.dcm"))


@pytest.mark.parametrize(
    ("offset", "vr"), [(0, b"U4"), (0, b"\0\0"), (2, b"ZZ")], ids=["U4", "nul", "ZZ"]
)
@pytest_twisted.ensureDeferred
async def test_corrupt_vr_is_skipped(
    index: SQLiteIndex, tmp_path: Path, offset: int, vr: bytes
) -> None:
    """When a VR in a file's header is corrupt, the file is skipped with a one-line reason
    (the import goes on)."""
    uids = Uids(CT_IMAGE, f"{_ROOT}.9.{offset}", f"{_ROOT}.9", f"{_ROOT}.9.1")
    data = instance(uids)
    tags = [b"\x08\x00\x18\x00", b"\x20\x00\x0d\x00", b"\x10\x00\x10\x00"]
    at = data.index(tags[offset], 132) + 4
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.dcm").write_bytes(data[:at] + vr + data[at + 2 :])
    shutil.copy(bundled("CT_small.dcm"), tmp_path / "src" / "good.dcm")
    summary = await run_import(index, tmp_path / "archive", tmp_path / "src")
    [(path, why)] = summary.skipped
    assert path.name == "bad.dcm" and summary.instances == 1
    assert why.startswith(("unreadable DICOM", "truncated")) and "\n" not in why


@pytest_twisted.ensureDeferred
async def test_same_uid_other_bytes_keeps_the_stored(index: SQLiteIndex, tmp_path: Path) -> None:
    """When a file reuses a stored SOP Instance UID with other content, it is skipped and
    the stored instance is kept."""
    storage = tmp_path / "archive"
    await run_import(index, storage, bundled("MR_small.dcm"))
    summary = await run_import(index, storage, bundled("MR_small_bigendian.dcm"))
    assert summary.instances == 0
    assert "already stored with different content" in summary.skipped[0][1]
    [r] = (await index.query(read_header(bundled("MR_small.dcm")).study_uid)).instances
    assert r.path.read_bytes() == bundled("MR_small.dcm").read_bytes()


@pytest_twisted.ensureDeferred
async def test_missing_file_restored_by_import(index: SQLiteIndex, tmp_path: Path) -> None:
    """When a stored file was deleted, it is missing for the query until imported again."""
    storage = tmp_path / "archive"
    await run_import(index, storage, bundled("CT_small.dcm"))
    study = read_header(bundled("CT_small.dcm")).study_uid
    [r] = (await index.query(study)).instances
    r.path.unlink()
    assert (await index.query(study)).missing == (r,)
    await run_import(index, storage, bundled("CT_small.dcm"))
    assert (await index.query(study)).instances == (r,)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from stowpair.cli import main; sys.exit(main())",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_demo_data_then_import(tmp_path: Path) -> None:
    """When `stowpair demo-data` then `stowpair import` run twice, the summaries say what
    was written, imported, then found unchanged."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "stowpair.toml").write_text('base_dir = ".."\n')
    out = _cli(
        "demo-data", "demo", "--studies", "2", "--instances", "3", "--size", "8", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("wrote 6 instances in 2 studies")
    (tmp_path / "demo" / "junk.bin").write_bytes(b"junk")
    first = _cli("import", "demo", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("7 files, 6 instances (6 new), 2 studies, 1 skipped")
    assert "junk.bin: not a DICOM Part 10 file" in first.stderr
    second = _cli("import", "demo", "-c", "conf/stowpair.toml", cwd=tmp_path)
    assert second.stdout.startswith("7 files, 6 instances (0 new), 2 studies, 1 skipped")
    assert len(list((tmp_path / "var" / "archive").rglob("*.dcm"))) == 6


def test_cli_import_bad_config(tmp_path: Path) -> None:
    """When the configuration file cannot be read, import says so and exits non-zero."""
    out = _cli("import", "x", "-c", "missing.toml", cwd=tmp_path)
    assert out.returncode == 1
    assert "missing.toml: cannot read" in out.stderr
