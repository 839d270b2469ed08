"""Generated demo studies (stowpair.archive.demo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from stowpair.archive.demo import demo_uids, generate_demo_study, mix_syntaxes
from stowpair.archive.store import read_header, valid_uid

SHARED = ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate", "AccessionNumber")


def test_demo_study_is_valid_and_distinct(tmp_path: Path) -> None:
    """When a demo study is generated, N valid instances share study and patient attributes
    and have distinct UIDs and distinct pixel data."""
    paths = generate_demo_study(tmp_path, 5, 20)
    datasets = [pydicom.dcmread(p) for p in paths]
    assert len({ds.SOPInstanceUID for ds in datasets}) == 5
    for keyword in (*SHARED, "SeriesInstanceUID"):
        assert len({str(ds.get(keyword)) for ds in datasets}) == 1, keyword
    assert all(valid_uid(ds.SOPInstanceUID) for ds in datasets)
    pixels = [ds.pixel_array for ds in datasets]
    assert len({a.tobytes() for a in pixels}) == 5
    for path, ds in zip(paths, datasets, strict=True):
        assert read_header(path).sop_instance_uid == ds.SOPInstanceUID


@pytest.mark.parametrize("size_kb", [4, 100, 600])
def test_demo_size(tmp_path: Path, size_kb: int) -> None:
    """When a size is asked for, each uncompressed instance is within 10% of it."""
    [path] = generate_demo_study(tmp_path, 1, size_kb)
    assert abs(path.stat().st_size - size_kb * 1024) < 0.1 * size_kb * 1024


def test_seed_reproduces_and_separates(tmp_path: Path) -> None:
    """When the same seed is used, the UIDs repeat; other seeds or none give fresh UIDs."""

    def uids(seed: int | None, where: str) -> list[str]:
        return [p.stem for p in generate_demo_study(tmp_path / where, 2, 4, seed)]

    assert uids(7, "a") == uids(7, "b")
    assert uids(7, "a") != uids(8, "c")
    assert uids(None, "d") != uids(None, "e")


def test_studies_differ_by_number(tmp_path: Path) -> None:
    """When several studies are generated with one seed, each has its own study UID."""
    a = generate_demo_study(tmp_path, 1, 4, seed=1, study_no=0)
    b = generate_demo_study(tmp_path, 1, 4, seed=1, study_no=1)
    assert read_header(a[0]).study_uid != read_header(b[0]).study_uid


def test_mixed_syntaxes_are_lossless(tmp_path: Path) -> None:
    """When a study mixes transfer syntaxes, each series has its syntax and every pixel
    decodes to exactly the pixels of the same instance in Explicit VR Little Endian."""
    syntaxes = mix_syntaxes()
    assert len(syntaxes) >= 5  # LE, implicit, big endian, deflated, RLE at least
    plain = generate_demo_study(tmp_path / "plain", len(syntaxes), 16, seed=5)
    mixed = generate_demo_study(tmp_path / "mixed", len(syntaxes), 16, seed=5, syntaxes=syntaxes)
    seen = set()
    for p, m in zip(plain, mixed, strict=True):
        expected, got = pydicom.dcmread(p), pydicom.dcmread(m)
        seen.add(got.file_meta.TransferSyntaxUID)
        assert np.array_equal(expected.pixel_array, got.pixel_array), (
            got.file_meta.TransferSyntaxUID
        )
        assert got.StudyInstanceUID == expected.StudyInstanceUID
    assert seen == set(syntaxes)


def test_seeded_uids_never_collide() -> None:
    """When 100 studies × 100 instances are planned with each of three seeds, every Study,
    Series and SOP Instance UID is distinct (across studies and seeds) and valid."""
    seen: list[str] = []
    for seed in (0, 7, 20261128):
        for study_no in range(100):
            uids = demo_uids(seed, study_no, 100, series=3)
            seen += [uids.study, *uids.series, *uids.instances]
    assert len(seen) == 3 * 100 * (1 + 3 + 100)
    assert len(set(seen)) == len(seen)
    assert all(valid_uid(uid) and uid.startswith("2.25.") for uid in seen)


def test_study_and_instance_numbers_stay_apart() -> None:
    """When study 1 instance 12 and study 11 instance 2 are planned with one seed, their
    SOP Instance UIDs differ (the parts were once joined without a separator)."""
    assert demo_uids(5, 1, 13).instances[12] != demo_uids(5, 11, 3).instances[2]


def test_demo_data_command_writes_distinct_instances(tmp_path: Path) -> None:
    """When `stowpair demo-data --studies 20 --seed S` runs, every file has its own SOP
    Instance UID (it once wrote 40 duplicates)."""
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from stowpair.cli import main; sys.exit(main())",
         "demo-data", str(out), "--studies", "20", "--instances", "12", "--size", "4",
         "--seed", "7"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*/*/*.dcm"))
    sops = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    assert len(files) == 240 and len(sops) == 240
