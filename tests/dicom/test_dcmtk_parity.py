"""Pixel identity with dcmtk/gdcm: lossless files made by the tools decode as the tools do.

Skipped with a reason when dcmtk or gdcm tools are missing, failed instead when
STOWPAIR_REQUIRE_PEERS=1 (as in .ci/run).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from stowpair.dicom import transfer_syntax as ts
from stowpair.dicom.transcode import transcode_file

from .helpers import bundled, pixels, require_tools

# (id, compress command, expected syntax, decompress command); the file names are appended.
TOOLS = [
    ("dcmcjpeg-e1", ["dcmcjpeg", "+e1"], ts.JPEG_LOSSLESS_SV1, ["dcmdjpeg"]),
    ("dcmcjpeg-el", ["dcmcjpeg", "+el"], ts.JPEG_LOSSLESS, ["dcmdjpeg"]),
    ("dcmcjpls", ["dcmcjpls"], ts.JPEG_LS_LOSSLESS, ["dcmdjpls"]),
    ("dcmcrle", ["dcmcrle"], ts.RLE_LOSSLESS, ["dcmdrle"]),
    ("gdcmconv-j2k", ["gdcmconv", "--j2k"], ts.JPEG_2000_LOSSLESS, ["gdcmconv", "--raw"]),
    ("gdcmconv-rle", ["gdcmconv", "--rle"], ts.RLE_LOSSLESS, ["gdcmconv", "--raw"]),
]
# 16-bit signed CT, 16-bit MR, 8-bit RGB, 8-bit palette; plus a 16-bit multi-frame made here.
SOURCES = ["CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm", "examples_palette.dcm", "*"]


def _source(name: str, tmp_path: Path) -> Path:
    if name != "*":
        return bundled(name)
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    frames = np.stack([ds.pixel_array, ds.pixel_array[::-1], ds.pixel_array.T])
    ds.NumberOfFrames = len(frames)
    ds.PixelData = frames.tobytes()
    path = tmp_path / "multiframe.dcm"
    ds.save_as(path)
    return path


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed: {done.stderr or done.stdout}"


@pytest.mark.parametrize("source", SOURCES, ids=[s if s != "*" else "MR-3-frames" for s in SOURCES])
@pytest.mark.parametrize(
    ("compress", "expected_ts", "decompress"),
    [t[1:] for t in TOOLS],
    ids=[t[0] for t in TOOLS],
)
def test_pixels_identical_to_tool_decompression(
    compress: list[str], expected_ts: str, decompress: list[str], source: str, tmp_path: Path
) -> None:
    """When a tool compresses losslessly, our decoding equals the tool's and the original."""
    require_tools(compress[0], decompress[0])
    original = _source(source, tmp_path)
    compressed, theirs, ours = (tmp_path / n for n in ("c.dcm", "theirs.dcm", "ours.dcm"))
    _run([*compress, str(original), str(compressed)])
    assert pydicom.dcmread(compressed).file_meta.TransferSyntaxUID == expected_ts
    _run([*decompress, str(compressed), str(theirs)])
    transcode_file(compressed, ts.EXPLICIT_VR_LE, ours)
    assert pydicom.dcmread(ours).file_meta.TransferSyntaxUID == ts.EXPLICIT_VR_LE
    np.testing.assert_array_equal(pixels(ours), pixels(theirs))
    np.testing.assert_array_equal(pixels(ours), pixels(original))
