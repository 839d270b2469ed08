"""Presentation contexts: what the SCP accepts, what the ``dicom:`` exporter proposes.

The SCP accepts every storage SOP Class pynetdicom knows with every transfer syntax the
archive can store (it stores data sets as received, compressed ones included). When a
requestor offers several syntaxes in one context, pynetdicom accepts the first of *our*
list that it offered; compressed syntaxes come first, so an instance is kept as the
modality encoded it.

The exporter proposes, per SOP Class, each stored transfer syntax in its own context and
one context with Explicit and Implicit VR Little Endian: dcm4chee's fallback. An instance
is sent as stored when its context was accepted, otherwise converted (decompressed) to
the syntax accepted for the fallback context (a native stored syntax gets its own context
too, so an Implicit VR instance is not converted when the destination takes it as is).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pynetdicom import AllStoragePresentationContexts, build_context
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from stowpair.dicom import transfer_syntax as ts

#: PS3.8 §9.3.2.2: at most 128 presentation contexts in one A-ASSOCIATE-RQ.
MAX_CONTEXTS = 128
#: The fallback context (dcm4chee: decompress when the stored syntax is refused).
NATIVE_FALLBACK = (ts.EXPLICIT_VR_LE, ts.IMPLICIT_VR_LE)


def scp_transfer_syntaxes() -> list[str]:
    """Every syntax the archive stores, in the SCP's order of preference."""
    native_order = (
        ts.EXPLICIT_VR_LE,
        ts.DEFLATED_EXPLICIT_VR_LE,
        ts.EXPLICIT_VR_BE,
        ts.IMPLICIT_VR_LE,
    )
    encoded = [
        t.uid for t in ts.TABLE if t.kind is not ts.Kind.NATIVE and t.kind is not ts.Kind.OTHER
    ]
    return encoded + list(native_order)


def scp_contexts() -> list[PresentationContext]:
    """Verification plus every storage SOP Class, each with :func:`scp_transfer_syntaxes`."""
    syntaxes = scp_transfer_syntaxes()
    contexts = [build_context(Verification, [ts.IMPLICIT_VR_LE, ts.EXPLICIT_VR_LE])]
    for cx in AllStoragePresentationContexts:
        contexts.append(build_context(str(cx.abstract_syntax), syntaxes))
    return contexts


@dataclass(frozen=True)
class Proposal:
    """One presentation context to propose: a SOP Class and its transfer syntaxes."""

    sop_class_uid: str
    transfer_syntaxes: tuple[str, ...]

    def context(self) -> PresentationContext:
        return build_context(self.sop_class_uid, list(self.transfer_syntaxes))


def proposals(pairs: Iterable[tuple[str, str]]) -> list[Proposal]:
    """The contexts for instances given as (SOP Class UID, stored transfer syntax):
    each stored syntax alone, then the native fallback, per SOP Class, in first-seen order.
    """
    by_class: dict[str, list[str]] = {}
    for sop_class, stored in pairs:
        seen = by_class.setdefault(sop_class, [])
        if stored not in seen:
            seen.append(stored)
    out: list[Proposal] = []
    for sop_class, syntaxes in by_class.items():
        out += [Proposal(sop_class, (s,)) for s in syntaxes]
        out.append(Proposal(sop_class, NATIVE_FALLBACK))
    return out


def association_groups(props: Sequence[Proposal]) -> list[list[Proposal]]:
    """Split proposals into groups that fit one association each (never splitting one
    SOP Class's contexts). A study of a few SOP Classes is always one group."""
    groups: list[list[Proposal]] = []
    current: list[Proposal] = []
    index = 0
    while index < len(props):
        cls = props[index].sop_class_uid
        end = index
        while end < len(props) and props[end].sop_class_uid == cls:
            end += 1
        block = list(props[index:end])
        if current and len(current) + len(block) > MAX_CONTEXTS:
            groups.append(current)
            current = []
        current += block
        index = end
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True)
class Choice:
    """How one instance travels on an association: ``target`` None means it cannot."""

    target: str | None
    transcode: bool
    reason: str = ""


def choose(sop_class: str, stored: str, accepted: dict[tuple[str, str], bool]) -> Choice:
    """dcm4chee's rule on the accepted contexts: as stored when (SOP Class, stored syntax)
    was accepted; else Explicit, else Implicit VR Little Endian (converted); else none.

    ``accepted`` maps (SOP Class UID, transfer syntax UID) to True for each accepted
    context's syntax.
    """
    if accepted.get((sop_class, stored)):
        return Choice(stored, False)
    for native in NATIVE_FALLBACK:
        if accepted.get((sop_class, native)):
            return Choice(native, True)
    return Choice(
        None,
        False,
        f"the destination accepted no presentation context for SOP Class {sop_class} "
        f"in {ts.describe(stored)} or Explicit/Implicit VR Little Endian",
    )
