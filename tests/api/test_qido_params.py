"""QIDO-RS study search parameters (stowpair.api.qido): every bad value is a 400 that
says what is wrong; the DICOM JSON of a study."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.api.params import ApiError
from stowpair.api.qido import study_json, study_query
from stowpair.archive.studies import StudyQuery, StudySummary


def args(**values: str) -> dict[bytes, list[bytes]]:
    return {k.encode(): [v.encode()] for k, v in values.items()}


@pytest.mark.parametrize(
    ("given_args", "expected"),
    [
        ({}, StudyQuery()),
        ({"StudyInstanceUID": "1.2.3"}, StudyQuery(study_uid="1.2.3")),
        ({"0020000D": "1.2.3"}, StudyQuery(study_uid="1.2.3")),
        ({"PatientID": "P 1"}, StudyQuery(patient_id="P 1")),
        ({"StudyDate": "20240101"}, StudyQuery(study_date=("20240101", "20240101"))),
        ({"StudyDate": "20240101-20241231"}, StudyQuery(study_date=("20240101", "20241231"))),
        ({"00080020": "-20241231"}, StudyQuery(study_date=(None, "20241231"))),
        ({"StudyDate": "20240101-"}, StudyQuery(study_date=("20240101", None))),
        ({"ModalitiesInStudy": "CT"}, StudyQuery(modality="CT")),
        ({"offset": "40", "limit": "20"}, StudyQuery(offset=40, limit=20)),
        ({"includefield": "all", "fuzzymatching": "false"}, StudyQuery()),
        ({"PatientID": ""}, StudyQuery()),
    ],
    ids=["none", "uid", "uid-tag", "patient", "date", "range", "to", "from", "modality", "page",
         "ignored", "empty"],
)  # fmt: skip
def test_parameters_become_a_query(given_args: dict[str, str], expected: StudyQuery) -> None:
    """When the parameters are valid, they become the matching keys and the page."""
    assert study_query(args(**given_args)) == expected


@pytest.mark.parametrize(
    ("given_args", "message"),
    [
        ({"StudyInstanceUID": "1.02"}, "StudyInstanceUID='1.02': expected a UID"),
        ({"StudyDate": "2024-01-01"}, "expected YYYYMMDD"),
        ({"StudyDate": "20240231"}, "expected YYYYMMDD"),
        ({"StudyDate": "-"}, "at least one date"),
        ({"ModalitiesInStudy": "CT\\MR"}, "expected one modality"),
        ({"limit": "0"}, "limit='0': expected a whole number 1-1000"),
        ({"limit": "1001"}, "1-1000"),
        ({"offset": "-1"}, "offset='-1'"),
        ({"PatientName": "DOE^J"}, "Unsupported query parameter 'PatientName': supported are"),
    ],
    ids=["uid", "date-dashes", "no-such-day", "open-range", "two-modalities", "limit-0",
         "limit-big", "offset", "unknown-key"],
)  # fmt: skip
def test_bad_parameters_are_400(given_args: dict[str, str], message: str) -> None:
    """When a parameter cannot match, the answer is 400 naming it and what is allowed."""
    with pytest.raises(ApiError) as caught:
        study_query(args(**given_args))
    assert caught.value.code == 400
    assert message in caught.value.message


@given(st.text(max_size=30))
def test_any_study_date_is_a_range_or_a_400(text: str) -> None:
    """When any text is given as StudyDate, it is read as a range of valid dates (either
    end open) or refused with a 400; nothing else."""
    try:
        query = study_query({b"StudyDate": [text.encode("utf-8", "replace")]})
    except ApiError as e:
        assert e.code == 400
        return
    if query.study_date is None:
        assert text == ""
        return
    low, high = query.study_date
    for bound in (low, high):
        assert bound is None or (len(bound) == 8 and bound.isdigit())


def test_study_json_is_dicom_json_with_the_counts() -> None:
    """When a study is written, it is a DICOM JSON object with VRs, its counts as IS and
    attributes without a value left without Value."""
    study = StudySummary("1.2.3", "", "20240101", ("CT", "MR"), 2, 30, 1000, 5.0)
    assert study_json(study) == {
        "00080020": {"vr": "DA", "Value": ["20240101"]},
        "00080056": {"vr": "CS", "Value": ["ONLINE"]},
        "00080061": {"vr": "CS", "Value": ["CT", "MR"]},
        "00100020": {"vr": "LO"},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00201206": {"vr": "IS", "Value": [2]},
        "00201208": {"vr": "IS", "Value": [30]},
    }
