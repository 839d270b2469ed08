"""What the archive holds, study by study (the any_index's studies and counts), behind
QIDO-RS ``/rs/studies``: for the SQLite and the PostgreSQL any_index alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from stowpair.archive.model import InstanceIndex
from stowpair.archive.studies import ArchiveCounts, StudyQuery
from tests.archive.test_index import record


async def three_studies(any_index: InstanceIndex, tmp: Path) -> None:
    """1.1 (P1, 2024-01-01, CT+MR, 3 instances in 2 series, received at 100-102),
    1.2 (P2, 2024-06-15, CT, 1 instance, received at 300), 1.3 (P1, no date, US, 200)."""
    await any_index.add(
        [
            record(tmp, "1.1.1", "1.1.1.1", study_uid="1.1", received_time=100.0, size=5),
            record(tmp, "1.1.1", "1.1.1.2", study_uid="1.1", received_time=101.0, size=5),
            record(tmp, "1.1.2", "1.1.2.1", study_uid="1.1", modality="MR", received_time=102.0),
            record(tmp, "1.2.1", "1.2.1.1", study_uid="1.2", patient_id="P2",
                   study_date="20240615", received_time=300.0),
            record(tmp, "1.3.1", "1.3.1.1", study_uid="1.3", study_date="", modality="US",
                   received_time=200.0),
        ]
    )  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_studies_are_listed_newest_received_first(
    any_index: InstanceIndex, tmp_path: Path
) -> None:
    """When the archive holds studies, each is listed once with its patient, date,
    modalities, series, instances and bytes, the last received first."""
    await three_studies(any_index, tmp_path)
    found = await any_index.studies(StudyQuery())
    assert [s.study_uid for s in found] == ["1.2", "1.3", "1.1"]
    first = found[2]
    assert first.modalities == ("CT", "MR")
    assert (first.patient_id, first.study_date) == ("P1", "20240101")
    assert (first.series, first.instances, first.size, first.last_received) == (2, 3, 20, 102.0)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (StudyQuery(study_uid="1.1"), ["1.1"]),
        (StudyQuery(patient_id="P1"), ["1.3", "1.1"]),
        (StudyQuery(study_date=("20240101", "20240101")), ["1.1"]),
        (StudyQuery(study_date=("20240201", None)), ["1.2"]),
        (StudyQuery(study_date=(None, "20241231")), ["1.2", "1.1"]),
        (StudyQuery(modality="MR"), ["1.1"]),
        (StudyQuery(modality="CT", patient_id="P2"), ["1.2"]),
        (StudyQuery(offset=1, limit=1), ["1.3"]),
        (StudyQuery(study_uid="9.9"), []),
    ],
    ids=["uid", "patient", "date", "date-from", "date-to", "modality", "two-keys", "page", "none"],
)
@pytest_twisted.ensureDeferred
async def test_studies_match_their_keys(
    any_index: InstanceIndex, tmp_path: Path, query: StudyQuery, expected: list[str]
) -> None:
    """When matching keys are given, only the studies matching all of them are listed
    (a date range leaves out studies without a date)."""
    await three_studies(any_index, tmp_path)
    assert [s.study_uid for s in await any_index.studies(query)] == expected


@pytest_twisted.ensureDeferred
async def test_counts_cover_the_matching_studies(any_index: InstanceIndex, tmp_path: Path) -> None:
    """When counted, the studies, series and instances of the matching studies are
    given, whatever the page."""
    await three_studies(any_index, tmp_path)
    assert await any_index.counts(StudyQuery()) == ArchiveCounts(3, 4, 5)
    assert await any_index.counts(StudyQuery(patient_id="P1", limit=1)) == ArchiveCounts(2, 3, 4)
    assert await any_index.counts(StudyQuery(study_uid="9.9")) == ArchiveCounts(0, 0, 0)
