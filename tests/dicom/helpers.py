"""Shared helpers for the dicom tests: pydicom's bundled files and pixel reading."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest

# Globbed directly: get_testdata_files() also probes the network for pydicom-data.
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"

#: Deliberately broken bundled pydicom files: they must fail cleanly.
BROKEN = {
    "JPEG-lossy.dcm": "cannot decode JPEG Extended",
    "JPEG2000-embedded-sequence-delimiter.dcm": "cannot decode JPEG 2000",
    "SC_rgb_jpeg.dcm": "(0008,0008)",  # decodes, but its Image Type cannot be re-encoded
}
#: Not usable as archive instances at all (truncated, bad VRs, no SOP UIDs).
UNUSABLE = {"MR_truncated.dcm", "badVR.dcm", "nested_priv_SQ.dcm"}


def bundled(name: str) -> Path:
    """A file shipped inside the pydicom wheel (never downloaded)."""
    path = TEST_FILES / name
    assert path.is_file(), f"{name} is not among pydicom's bundled test files"
    return path


def bundled_images() -> list[tuple[str, Path]]:
    """(transfer syntax UID, path) of every bundled file with Pixel Data and FMI."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in sorted(TEST_FILES.rglob("*.dcm")):
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=False, defer_size=64)
            except Exception:
                continue
            tsuid = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
            if tsuid and "PixelData" in ds and path.name not in UNUSABLE:
                found.append((str(tsuid), path))
    return found


def pixels(path: Path, *, as_rgb: bool = False, plugin: str = "") -> np.ndarray:
    """Decoded pixels as pydicom sees them (no YCbCr conversion unless asked)."""
    ds = pydicom.dcmread(path)
    ds.pixel_array_options(as_rgb=as_rgb, decoding_plugin=plugin)
    return ds.pixel_array


def require_tools(*names: str) -> None:
    """Skip (or fail, with STOWPAIR_REQUIRE_PEERS=1) when a command-line tool is missing."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    reason = (
        f"missing {', '.join(missing)}: apt-get install -y dcmtk libgdcm-tools "
        "(set STOWPAIR_REQUIRE_PEERS=1 to make this a failure)"
    )
    if os.environ.get("STOWPAIR_REQUIRE_PEERS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)
