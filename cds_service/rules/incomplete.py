"""The record could not be read in full: say so, rather than let "no cards" read as "nothing found"."""

from __future__ import annotations

from collections.abc import Sequence

from ..findings import Evidence, Finding
from ..record.model import PatientRecord, Unread

LISTED_AT_MOST = 10


def _line(item: Unread) -> Evidence:
    what = item.label or {"invalid": "record item", "attachment": "clinical note"}.get(item.reason, "record item")
    return Evidence(f"Not read ({what}): {item.detail}", item.reference)


def record_incomplete_rule(record: PatientRecord, scope_concepts: Sequence[str], in_scope: bool,
                           others_fired: bool = False) -> Finding | None:
    """What could change the answer but was not read.

    In scope: every unread item when no other card fired; only what the evaluation budget left unread
    when other cards fired (their evidence already names invalid resources). Out of scope: items whose
    code names a complaint concept (they might have put the patient in scope), unread notes, and what the
    budget left (it may hold the complaint).
    """
    scope = frozenset(scope_concepts)
    if in_scope:
        unread = [u for u in record.unread if not others_fired or u.reason in {"budget", "deadline"}]
    else:
        unread = [u for u in record.unread
                  if u.concepts & scope or u.reason in {"attachment", "budget", "deadline"}]
    if not unread:
        return None
    evidence = tuple(_line(u) for u in unread[:LISTED_AT_MOST])
    more = len(unread) - LISTED_AT_MOST
    if more > 0:
        evidence += (Evidence(f"and {more} more record item(s) not read"),)
    variant = "budget" if any(u.reason in {"budget", "deadline"} for u in unread) else None
    return Finding("record-incomplete", evidence, variant=variant, values={"unread_count": str(len(unread))})
