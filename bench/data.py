"""Benchmark data sets: one study of N instances of about a given size, made with pydicom."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def make_study(directory: Path, instances: int, size_kb: int, seed: int = 1) -> list[Path]:
    """``instances`` Explicit VR LE CT images of ~``size_kb`` KB in one study and series."""
    directory.mkdir(parents=True, exist_ok=True)
    template = dcmread(get_testdata_file("CT_small.dcm"))
    side = max(16, int((size_kb * 1024 / 2) ** 0.5))
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2000, size=(side, side), dtype=np.int16)
    study, series = generate_uid(), generate_uid()
    paths = []
    for i in range(instances):
        ds = template.copy()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = i + 1
        ds.Rows = ds.Columns = side
        ds.PixelData = np.roll(base, i, axis=0).tobytes()
        path = directory / f"{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def make_studies(
    directory: Path, studies: int, instances: int, size_kb: int, seed: int = 1
) -> list[Path]:
    """``studies`` studies of ``instances`` each (see :func:`make_study`)."""
    paths = []
    for n in range(studies):
        paths += make_study(directory / f"{n:03d}", instances, size_kb, seed=seed + n)
    return paths


def compress_sv1(sources: list[Path], directory: Path) -> list[Path]:
    """JPEG Lossless SV1 copies made by dcmtk's ``dcmcjpeg +e1``."""
    directory.mkdir(parents=True, exist_ok=True)
    binary = shutil.which("dcmcjpeg")
    if binary is None:
        raise RuntimeError("dcmcjpeg is not installed (Debian package dcmtk)")
    out = []
    for src in sources:
        dest = directory / src.name
        subprocess.run([binary, "+e1", str(src), str(dest)], check=True)
        out.append(dest)
    return out


def multipart_body(paths: list[Path], dest: Path, boundary: str) -> int:
    """The STOW-RS body for ``paths`` written to ``dest``, for curl; returns its size."""
    with dest.open("wb") as out:
        for path in paths:
            out.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            with path.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
            out.write(b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
    return dest.stat().st_size
