"""Generated demo studies: valid, distinct, with real pixel data.

Pixels come from pydicom's bundled ``CT_small.dcm`` (128×128, 16-bit), tiled to the size
asked for and shifted per instance so no two instances share pixel data. UIDs are fresh UUID-derived
``2.25.`` UIDs; with a seed they are derived from (seed, kind, study, series or instance
number), so they are reproducible and never collide. Files are written
in the archive layout ``<dir>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm``.

Everything here blocks (numpy, encoders, file writes): call it from a thread in a service.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)

from stowpair.dicom.uids import derived_uid, new_uid

#: Transfer syntaxes used by ``--mix-transfer-syntaxes``, in series order (the
#: compressed ones only when an encoder is installed; see :func:`mix_syntaxes`).
MIX_CANDIDATES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEG2000Lossless,
)
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Rough bytes of the header we write, subtracted from the requested size.
_HEADER_BYTES = 1100  # measured: 1,090-1,100 bytes with 2.25 UIDs


def mix_syntaxes() -> tuple[UID, ...]:
    """The mix of transfer syntaxes this installation can write.

    RLE uses pylibjpeg-rle (never gdcm, which can abort the process); JPEG-LS needs
    pyjpegls and JPEG 2000 pylibjpeg-openjpeg: each is left out when its encoder is missing.
    """
    from pydicom.pixels import get_encoder

    out = []
    for ts in MIX_CANDIDATES:
        if ts.is_compressed:
            encoder = get_encoder(ts)
            plugin = _encoding_plugin(ts)
            if not encoder.is_available or (plugin and plugin not in encoder.available_plugins):
                continue
        out.append(ts)
    return tuple(out)


def _encoding_plugin(ts: UID) -> str:
    return "pylibjpeg" if ts in (RLELossless, JPEG2000Lossless) else ""


@dataclass(frozen=True)
class _Base:
    """The CT_small template and its pixels, loaded once."""

    dataset: Dataset
    pixels: Any  # numpy uint16 array (2-D)


def _load_base() -> _Base:
    path = get_testdata_file("CT_small.dcm")
    if path is None:  # pragma: no cover - pydicom always ships it
        raise RuntimeError("pydicom's bundled CT_small.dcm is missing; reinstall pydicom")
    ds = pydicom.dcmread(path)
    # Unsigned 16-bit keeps every lossless encoder happy; values stay CT-like.
    pixels = ds.pixel_array.astype(np.int32).clip(0, 65535).astype(np.uint16)
    return _Base(ds, pixels)


def _side(size_kb: int) -> int:
    """Rows = columns giving ~``size_kb`` KB per instance with 16-bit pixels."""
    pixel_bytes = max(size_kb * 1024 - _HEADER_BYTES, 2 * 16 * 16)
    return max(16, round(math.sqrt(pixel_bytes / 2) / 2) * 2)  # nearest even side


def _tile(pixels: Any, side: int) -> Any:
    reps = (math.ceil(side / pixels.shape[0]), math.ceil(side / pixels.shape[1]))
    return np.ascontiguousarray(np.tile(pixels, reps)[:side, :side])


@dataclass(frozen=True)
class DemoUids:
    """The UIDs of one demo study: its Study UID, Series UIDs, SOP Instance UIDs."""

    study: str
    series: tuple[str, ...]
    instances: tuple[str, ...]


def demo_uids(seed: int | None, study_no: int, instances: int, series: int = 1) -> DemoUids:
    """The UIDs :func:`generate_demo_study` writes for study number ``study_no``.

    Without a seed they are fresh. With one, each UID is derived from (seed, kind, study
    number, series or instance number) kept as separate parts: the parts used to be
    joined without a separator, so study 1 instance 12 and study 11 instance 2 got the
    same SOP Instance UID.
    """

    def uid(*parts: object) -> str:
        return new_uid() if seed is None else derived_uid("stowpair demo-data", seed, *parts)

    return DemoUids(
        uid("study", study_no),
        tuple(uid("series", study_no, k) for k in range(series)),
        tuple(uid("instance", study_no, i) for i in range(instances)),
    )


class _StudyWriter:
    """Writes one study; attributes shared by every instance are set once."""

    def __init__(self, base: _Base, side: int, rng: random.Random, seed: int | None) -> None:
        self.rng = rng
        self.seed = seed
        self.tiled = _tile(base.pixels, side)
        self.template = self._template(base.dataset, side)

    def _template(self, src: Dataset, side: int) -> Dataset:
        ds = Dataset()
        n = self.rng.randrange(1, 10**6)
        when = datetime(2024, 1, 1) + timedelta(minutes=self.rng.randrange(0, 365 * 24 * 60))
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = _CT_IMAGE_STORAGE
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = when.strftime("%H%M%S")
        ds.AccessionNumber = f"A{n:08d}"
        ds.Modality = "CT"
        ds.Manufacturer = "stowpair demo-data"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "stowpair demo study"
        ds.PatientName = f"DEMO^PATIENT^{n:06d}"
        ds.PatientID = f"DEMO{n:06d}"
        ds.PatientBirthDate = f"19{self.rng.randrange(30, 99)}0101"
        ds.PatientSex = self.rng.choice(["F", "M", "O"])
        ds.StudyID = str(n % 10**6)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = side
        ds.PixelSpacing = [str(x) for x in src.get("PixelSpacing", ["0.66", "0.66"])]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = src.get("RescaleIntercept", -1024)
        ds.RescaleSlope = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        return ds

    def write(
        self, directory: Path, instances: int, syntaxes: Sequence[UID], study_no: int
    ) -> list[Path]:
        series_count = min(len(syntaxes), instances) or 1
        uids = demo_uids(self.seed, study_no, instances, series_count)
        paths = []
        for i in range(instances):
            k = i % series_count
            ds = self._instance(i, k, uids.study, uids.series[k], uids.instances[i])
            paths.append(self._save(ds, syntaxes[k], directory))
        return paths

    def _instance(self, i: int, k: int, study: str, series: str, sop: str) -> Dataset:
        ds = Dataset()
        ds.update(self.template)
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SeriesNumber = k + 1
        ds.SeriesDescription = f"demo series {k + 1}"
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = ["0", "0", str(-i)]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = str(-i)
        # Distinct pixels per instance: shift the tiled image by the instance number.
        ds.PixelData = np.roll(self.tiled, (i * 7, i * 3), axis=(0, 1)).tobytes()
        return ds

    def _save(self, ds: Dataset, ts: UID, directory: Path) -> Path:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        if ts.is_compressed:
            ds.compress(ts, encoding_plugin=_encoding_plugin(ts), generate_instance_uid=False)
        elif ts == ExplicitVRBigEndian:
            # PS3.5 §7.3: OW words are byte-swapped in Big Endian; pydicom writes
            # PixelData bytes as they are, so swap them here.
            rows, cols = ds.Rows, ds.Columns
            pixels = np.frombuffer(ds.PixelData, dtype="<u2").reshape(rows, cols)
            ds.PixelData = pixels.astype(">u2").tobytes()
        meta.TransferSyntaxUID = ts
        path = directory / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path


def generate_demo_study(
    directory: Path,
    instances: int,
    size_kb: int = 100,
    seed: int | None = None,
    syntaxes: Sequence[UID] = (ExplicitVRLittleEndian,),
    study_no: int = 0,
) -> list[Path]:
    """Write one demo CT study of ``instances`` images of ~``size_kb`` KB under ``directory``.

    One series per transfer syntax in ``syntaxes`` (default: one Explicit VR Little Endian
    series). Returns the files written. The same ``seed`` and ``study_no`` give the same
    UIDs and attributes. Blocking: run it in a thread from the service.
    """
    if instances < 1:
        raise ValueError("a demo study needs at least one instance")
    rng = random.Random(None if seed is None else f"{seed}/{study_no}")
    writer = _StudyWriter(_cached_base(), _side(size_kb), rng, seed)
    return writer.write(directory, instances, tuple(syntaxes), study_no)


_BASE: _Base | None = None


def _cached_base() -> _Base:
    global _BASE
    if _BASE is None:
        _BASE = _load_base()
    return _BASE
