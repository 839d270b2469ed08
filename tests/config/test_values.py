"""ISO-8601 durations and transfer syntax keywords."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stowpair.config.durations import format_duration, parse_duration
from stowpair.config.ts_keywords import TS_KEYWORDS
from stowpair.config.webapps import parse_transfer_syntaxes


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT30S", 30), ("PT10M", 600), ("P1D", 86400), ("PT1H30M", 5400), ("pt0.5s", 0.5),
     ("P1DT1S", 86401), ("PT0S", 0)],
    ids=lambda v: str(v),
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    """When a dcm4chee duration is parsed, it gives seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30s", "P", "PT", "P1DT", "PT-1S", "P1W", "P1Y", "1", ""])
def test_bad_duration(text: str) -> None:
    """When a duration is not ISO-8601 days/time, ValueError names the accepted forms."""
    with pytest.raises(ValueError, match=r"e\.g\. PT30S"):
        parse_duration(text)


@given(st.integers(0, 10**7))
def test_duration_round_trip(seconds: int) -> None:
    """When whole seconds are formatted, parsing gives them back."""
    assert parse_duration(format_duration(seconds)) == seconds


def test_keywords_match_pydicom() -> None:
    """When pydicom knows a transfer syntax UID of ours, its keyword is the same."""
    from pydicom._uid_dict import UID_dictionary

    for keyword, uid in TS_KEYWORDS.items():
        if uid in UID_dictionary:
            assert UID_dictionary[uid][4] == keyword, uid


@pytest.mark.parametrize(
    ("text", "uids"),
    [
        ("JPEGLossless", ("1.2.840.10008.1.2.4.57",)),
        ("JPEGLosslessSV1", ("1.2.840.10008.1.2.4.70",)),
        (" ExplicitVRLittleEndian , 1.2.3 ", ("1.2.840.10008.1.2.1", "1.2.3")),
        ("*", ("*",)),
    ],
)
def test_transfer_syntaxes(text: str, uids: tuple[str, ...]) -> None:
    """When transfer-syntax lists keywords, UIDs or *, they resolve to UIDs (and * stays)."""
    assert parse_transfer_syntaxes(text) == uids


@pytest.mark.parametrize("text", ["JpegLossless", "1.2.", "01.2", "", "1.2.840,"])
def test_bad_transfer_syntaxes(text: str) -> None:
    """When an item is neither a keyword nor a UID, ValueError names it."""
    with pytest.raises(ValueError):
        parse_transfer_syntaxes(text)
