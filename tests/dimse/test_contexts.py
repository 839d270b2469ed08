"""Presentation contexts the exporter proposes, and how an instance travels on them."""

from __future__ import annotations

import pytest

from stowpair.dicom import transfer_syntax as ts
from stowpair.dimse.contexts import (
    MAX_CONTEXTS,
    NATIVE_FALLBACK,
    Proposal,
    association_groups,
    choose,
    proposals,
)

CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"


def test_each_stored_syntax_alone_then_the_fallback() -> None:
    """When a study holds CT in two syntaxes and MR in one, each (class, syntax) is its own
    context and each class gets the Explicit/Implicit fallback once."""
    got = proposals([(CT, ts.JPEG_LS_LOSSLESS), (MR, ts.EXPLICIT_VR_LE), (CT, ts.RLE_LOSSLESS),
                     (CT, ts.JPEG_LS_LOSSLESS)])  # fmt: skip
    assert got == [
        Proposal(CT, (ts.JPEG_LS_LOSSLESS,)),
        Proposal(CT, (ts.RLE_LOSSLESS,)),
        Proposal(CT, NATIVE_FALLBACK),
        Proposal(MR, (ts.EXPLICIT_VR_LE,)),
        Proposal(MR, NATIVE_FALLBACK),
    ]


def test_groups_fit_one_association() -> None:
    """When there are more contexts than one A-ASSOCIATE-RQ may carry, they are split
    between SOP Classes, never inside one."""
    classes = [f"1.2.3.{n}" for n in range(100)]
    props = proposals((c, ts.JPEG_2000_LOSSLESS) for c in classes)
    groups = association_groups(props)
    assert [len(g) for g in groups] == [128, 72]
    assert all(len(g) <= MAX_CONTEXTS for g in groups)
    assert [p for g in groups for p in g] == props


ACCEPTED = {(CT, ts.JPEG_LS_LOSSLESS): True, (CT, ts.IMPLICIT_VR_LE): True}


@pytest.mark.parametrize(
    ("stored", "target", "transcode"),
    [
        (ts.JPEG_LS_LOSSLESS, ts.JPEG_LS_LOSSLESS, False),
        (ts.RLE_LOSSLESS, ts.IMPLICIT_VR_LE, True),
        (ts.EXPLICIT_VR_LE, ts.IMPLICIT_VR_LE, True),
    ],
    ids=["as-stored", "decompressed", "converted"],
)
def test_choose(stored: str, target: str, transcode: bool) -> None:
    """An instance goes as stored when that context was accepted, else in the accepted
    native fallback syntax."""
    choice = choose(CT, stored, ACCEPTED)
    assert (choice.target, choice.transcode) == (target, transcode)


def test_choose_nothing_accepted() -> None:
    """When no context of the SOP Class was accepted, the instance cannot go, and the
    reason names the class and syntax."""
    choice = choose(MR, ts.RLE_LOSSLESS, ACCEPTED)
    assert choice.target is None and MR in choice.reason and "RLE Lossless" in choice.reason
