"""The record could not be read in full: say so, rather than let "no cards" read as "nothing found"."""

from __future__ import annotations

from collections.abc import Sequence

from ..findings import Evidence, Finding
from ..record.model import PatientRecord

LISTED_AT_MOST = 10


def record_incomplete_rule(record: PatientRecord, scope_concepts: Sequence[str],
                           in_scope: bool) -> Finding | None:
    """Unreadable resources that could change the answer: any of them when the patient is in scope,
    else those whose code names a complaint concept (they might have put the patient in scope)."""
    scope = frozenset(scope_concepts)
    unread = [s for s in record.skipped if in_scope or s.concepts & scope]
    if not unread:
        return None
    evidence = tuple(
        Evidence(f"Not read ({s.label or 'patient details'}): invalid FHIR, {s.problems} problem(s)",
                 s.reference)
        for s in unread[:LISTED_AT_MOST]
    )
    more = len(unread) - LISTED_AT_MOST
    if more > 0:
        evidence += (Evidence(f"and {more} more unreadable resource(s)"),)
    return Finding("record-incomplete", evidence, values={"unread_count": str(len(unread))})
