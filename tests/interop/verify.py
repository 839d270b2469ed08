"""Checks at the destination: the same bytes, or the same pixels and UIDs."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset

from stowpair.dicom.transfer_syntax import EXPLICIT_VR_LE

#: UIDs that must survive any re-encoding.
IDENTITY = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


def sop_uid(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def by_sop(files: Iterable[Path]) -> dict[str, Path]:
    """The sent files keyed by SOP Instance UID."""
    return {sop_uid(p): p for p in files}


def assert_same_bytes(sent: Mapping[str, Path], received: Mapping[str, bytes]) -> None:
    """Every sent file is at the destination byte for byte, and nothing else is."""
    assert sorted(received) == sorted(sent), "instances at the destination differ"
    different = [uid for uid, path in sent.items() if path.read_bytes() != received[uid]]
    assert not different, f"{len(different)} instances differ byte-wise, e.g. {different[0]}"


def assert_same_pixels(
    sent: Mapping[str, Path], received: Mapping[str, bytes], ts: str | None = EXPLICIT_VR_LE
) -> None:
    """Every sent instance is at the destination with equal UIDs and pixel arrays
    (and, when ``ts`` is given, stored in that transfer syntax)."""
    assert sorted(received) == sorted(sent), "instances at the destination differ"
    for uid, path in sent.items():
        assert_same_instance(dcmread(path), dcmread(io.BytesIO(received[uid])), ts)


def assert_same_instance(original: Dataset, got: Dataset, ts: str | None) -> None:
    for keyword in IDENTITY:
        assert got[keyword].value == original[keyword].value, keyword
    if ts is not None:
        assert got.file_meta.TransferSyntaxUID == ts
    assert np.array_equal(got.pixel_array, original.pixel_array), (
        f"pixels of {original.SOPInstanceUID} ({original.file_meta.TransferSyntaxUID}) differ"
    )


def stored_files(folder: Path) -> dict[str, bytes]:
    """A stowrsd / archive folder in the UID layout: SOP Instance UID → bytes."""
    return {p.stem: p.read_bytes() for p in folder.rglob("*.dcm") if ".incoming" not in p.parts}
