"""Fixture feedback with answers worked out by hand (not by the code under test).

Window: 2026-11-02 (a Monday) to 2026-11-15 inclusive = [2026-11-02T00:00Z, 2026-11-16T00:00Z), two ISO weeks.
Cards are written to the store as the background writer writes them; feedback goes through
`FeedbackStore.add_feedback` (the real path), then its arrival time is set inside the window.

card topic        ver pat shown (UTC)     outcome (the first)                           time      repeat
c0   dvt-likely    v1  P1  11-01 20:00:00  (before the window: only tells that c1 repeats it)
c1   dvt-likely    v1  P1  11-02 08:00:00  accepted venous-duplex at 08:00:30                30 s      yes (12 h)
c2   dvt-likely    v1  P2  11-02 09:00:00  overridden already-assessed + comment             60 s      no
c3   dvt-likely    v1  P1  11-03 08:00:00  overridden patient-declined                       10 s      yes (24 h)
c4   septic-arth.  v1  P1  11-03 08:00:00  —                                                           no (topic)
c5   msk-self-care v1  P3  11-04 10:00:00  —                                                           no
c6   dvt-likely    v1  P2  11-05 09:00:01  accepted d-dimer at 09:02:01, then overridden     120 s     no (3 days)
c7   msk-self-care v1  P3  11-05 09:59:59  overridden HL7 limited-time (sent by the EHR)     20 s      yes (23:59:59)
c8   dvt-likely    v2  P4  11-09 12:00:00  overridden, no reason                             40 s      no
c9   dvt-likely    v2  P4  11-10 12:00:01  overridden, a code we do not offer                5 s       no (24 h 1 s)
c10  septic-arth.  v2  —   11-11 00:00:00  accepted, an unknown suggestion, 60 s BEFORE      left out  (no hash)
c11  msk-self-care v2  P3  11-15 23:59:59  overridden not-clinically-relevant + comment,     left out  no
                                           an unreadable timestamp
c12  dvt-likely    v2  P1  11-16 00:00:00  accepted (at `until`: outside the window)
+ one feedback item for a card the store never showed (unmatched)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update

from cds_service.analytics import PatientHasher
from cds_service.feedback_store import FeedbackStore
from cds_service.feedback_store.schema import cards_shown, feedback
from cds_service.render import OVERRIDE_SYSTEM
from cds_service.wire import FeedbackRequest

SERVICE = "posterior-knee-pain"
SINCE, UNTIL = "2026-11-02", "2026-11-15"
V1, V2 = "2026-11-01", "2026-11-21"
HL7 = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
HASH = PatientHasher(b"fixture-key-" + b"k" * 32)
P1, P2, P3, P4 = (HASH(f"patient-{n}") for n in range(1, 5))
# a patient id must never reach the store: these are what the tests look for
PATIENT_IDS = ("patient-1", "patient-2", "patient-3", "patient-4")
COMMENT = "Mrs Example (MRN 123456) seen by vascular"


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CARDS: list[dict[str, Any]] = [
    {"card_uuid": "c0", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V1, "patient_key": P1,
     "shown_at": t("2026-11-01T20:00:00")},
    {"card_uuid": "c1", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V1, "patient_key": P1,
     "shown_at": t("2026-11-02T08:00:00"), "suggestions": {"s1a": "venous-duplex", "s1b": "d-dimer"}},
    {"card_uuid": "c2", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V1, "patient_key": P2,
     "shown_at": t("2026-11-02T09:00:00"), "suggestions": {"s2a": "venous-duplex", "s2b": "d-dimer"}},
    {"card_uuid": "c3", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V1, "patient_key": P1,
     "shown_at": t("2026-11-03T08:00:00")},
    {"card_uuid": "c4", "topic": "septic-arthritis", "indicator": "critical", "knowledge_version": V1,
     "patient_key": P1, "shown_at": t("2026-11-03T08:00:00")},
    {"card_uuid": "c5", "topic": "msk-self-care", "indicator": "info", "knowledge_version": V1, "patient_key": P3,
     "shown_at": t("2026-11-04T10:00:00")},
    {"card_uuid": "c6", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V1, "patient_key": P2,
     "shown_at": t("2026-11-05T09:00:01"), "suggestions": {"s6a": "venous-duplex", "s6b": "d-dimer"}},
    {"card_uuid": "c7", "topic": "msk-self-care", "indicator": "info", "knowledge_version": V1, "patient_key": P3,
     "shown_at": t("2026-11-05T09:59:59")},
    {"card_uuid": "c8", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V2, "patient_key": P4,
     "shown_at": t("2026-11-09T12:00:00")},
    {"card_uuid": "c9", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V2, "patient_key": P4,
     "shown_at": t("2026-11-10T12:00:01")},
    {"card_uuid": "c10", "topic": "septic-arthritis", "indicator": "critical", "knowledge_version": V2,
     "patient_key": None, "shown_at": t("2026-11-11T00:00:00")},
    {"card_uuid": "c11", "topic": "msk-self-care", "indicator": "info", "knowledge_version": V2, "patient_key": P3,
     "shown_at": t("2026-11-15T23:59:59")},
    {"card_uuid": "c12", "topic": "dvt-likely", "indicator": "critical", "knowledge_version": V2, "patient_key": P1,
     "shown_at": t("2026-11-16T00:00:00")},
]


def _overridden(card: str, at: str, code: str | None = None, system: str | None = OVERRIDE_SYSTEM,
                comment: str | None = None) -> dict[str, Any]:
    reason: dict[str, Any] = {}
    if code:
        reason["reason"] = {"code": code, **({"system": system} if system else {})}
    if comment:
        reason["userComment"] = comment
    return {"card": card, "outcome": "overridden", "outcomeTimestamp": at,
            **({"overrideReason": reason} if reason else {})}


def _accepted(card: str, at: str, *suggestions: str) -> dict[str, Any]:
    return {"card": card, "outcome": "accepted", "outcomeTimestamp": at,
            "acceptedSuggestions": [{"id": s} for s in suggestions]}


FEEDBACK: list[dict[str, Any]] = [
    _accepted("c1", "2026-11-02T08:00:30Z", "s1a"),
    _overridden("c2", "2026-11-02T09:01:00Z", "already-assessed", comment=COMMENT),
    _overridden("c3", "2026-11-03T08:00:10.000Z", "patient-declined"),
    _overridden("c6", "2026-11-05T09:05:00Z", "already-assessed"),        # later than its acceptance: not counted
    _accepted("c6", "2026-11-05T09:02:01Z", "s6b"),                       # sent second, happened first
    _overridden("c7", "2026-11-05T10:00:19Z", "limited-time", system=HL7),
    _overridden("c8", "2026-11-09T12:00:40Z"),
    _overridden("c9", "2026-11-10T12:00:06+00:00", "Mrs Example refused", system="urn:local:free-text"),
    _accepted("c10", "2026-11-10T23:59:00Z", "not-a-suggestion-of-c10"),
    _overridden("c11", "yesterday afternoon", "not-clinically-relevant", comment="patient anxious, see note"),
    _accepted("c12", "2026-11-16T00:00:10Z", "whatever"),
    _accepted("no-such-card", "2026-11-06T00:00:00Z", "x"),
]
RECEIVED_AT = t("2026-11-10T00:00:00")


def load(store: FeedbackStore) -> None:
    """Write the fixture into an empty store."""
    rows = [{"service_id": SERVICE, "hook_instance": f"hook-{c['card_uuid']}", "suggestions": None, **c}
            for c in CARDS]
    store.start()
    with store.engine.begin() as connection:
        connection.execute(cards_shown.insert(), rows)
    items = FeedbackRequest.model_validate({"feedback": FEEDBACK}).feedback
    result = store.add_feedback(SERVICE, items)
    assert result.stored == len(FEEDBACK) and result.unmatched == 1
    with store.engine.begin() as connection:
        connection.execute(update(feedback).values(received_at=RECEIVED_AT))


def measure(**values: Any) -> dict[str, Any]:
    """A group's expected scalars: every count given, the rest zero or None as for an empty group."""
    base: dict[str, Any] = {"shown": 0, "accepted": 0, "overridden": 0, "no_outcome": 0, "acceptance_rate": None,
                            "override_rate": None, "answered_override_rate": None, "time_to_action_n": 0,
                            "time_to_action_p50_s": None, "time_to_action_p90_s": None,
                            "time_to_action_excluded": 0, "repeat_base": 0, "repeats": 0, "repeat_rate": None,
                            "feedback_items": 0, "comments": 0}
    base.update(values)
    return base


# The answers, by hand. Times: c1 30, c2 60, c3 10, c6 120, c7 20, c8 40, c9 5 (c10 before it was shown,
# c11 unreadable: left out). Sorted 5 10 20 30 40 60 120: median = the 4th = 30; p90 at rank 1 + 6 × 0.9
# = 6.4 → 60 + 0.4 × (120 − 60) = 84.
TOTALS = measure(shown=11, accepted=3, overridden=6, no_outcome=2, acceptance_rate=0.2727, override_rate=0.5455,
                 answered_override_rate=0.6667, time_to_action_n=7, time_to_action_p50_s=30.0,
                 time_to_action_p90_s=84.0, time_to_action_excluded=2, repeat_base=10, repeats=3,
                 repeat_rate=0.3, feedback_items=10, comments=2)
TOPICS = {
    # c1 c2 c3 c6 c8 c9; times 5 10 30 40 60 120: median (30 + 40) / 2 = 35, p90 at 5.5 → 60 + 0.5 × 60 = 90
    "dvt-likely": measure(shown=6, accepted=2, overridden=4, acceptance_rate=0.3333, override_rate=0.6667,
                          answered_override_rate=0.6667, time_to_action_n=6, time_to_action_p50_s=35.0,
                          time_to_action_p90_s=90.0, repeat_base=6, repeats=2, repeat_rate=0.3333, feedback_items=7,
                          comments=1),
    # c4 c10
    "septic-arthritis": measure(shown=2, accepted=1, no_outcome=1, acceptance_rate=0.5, override_rate=0.0,
                                answered_override_rate=0.0, time_to_action_excluded=1, repeat_base=1,
                                repeat_rate=0.0, feedback_items=1),
    # c5 c7 c11
    "msk-self-care": measure(shown=3, overridden=2, no_outcome=1, acceptance_rate=0.0, override_rate=0.6667,
                             answered_override_rate=1.0, time_to_action_n=1, time_to_action_p50_s=20.0,
                             time_to_action_p90_s=20.0, time_to_action_excluded=1, repeat_base=3, repeats=1,
                             repeat_rate=0.3333, feedback_items=2, comments=1),
}
INDICATORS = {
    "critical": measure(shown=8, accepted=3, overridden=4, no_outcome=1, acceptance_rate=0.375, override_rate=0.5,
                        answered_override_rate=0.5714, time_to_action_n=6, time_to_action_p50_s=35.0,
                        time_to_action_p90_s=90.0, time_to_action_excluded=1, repeat_base=7, repeats=2,
                        repeat_rate=0.2857, feedback_items=8, comments=1),
    "info": TOPICS["msk-self-care"],
}
VERSIONS = {
    # c1..c7; times 10 20 30 60 120: median 30, p90 at 4.6 → 60 + 0.6 × 60 = 96
    V1: measure(shown=7, accepted=2, overridden=3, no_outcome=2, acceptance_rate=0.2857, override_rate=0.4286,
                answered_override_rate=0.6, time_to_action_n=5, time_to_action_p50_s=30.0,
                time_to_action_p90_s=96.0, repeat_base=7, repeats=3, repeat_rate=0.4286, feedback_items=6,
                comments=1),
    # c8..c11; times 5 40: median 22.5, p90 5 + 0.9 × 35 = 36.5
    V2: measure(shown=4, accepted=1, overridden=3, acceptance_rate=0.25, override_rate=0.75,
                answered_override_rate=0.75, time_to_action_n=2, time_to_action_p50_s=22.5,
                time_to_action_p90_s=36.5, time_to_action_excluded=2, repeat_base=3, repeat_rate=0.0,
                feedback_items=4, comments=1),
}
SHOWN_PER_DAY = {"2026-11-02": 2, "2026-11-03": 2, "2026-11-04": 1, "2026-11-05": 2, "2026-11-09": 1,
                 "2026-11-10": 1, "2026-11-11": 1, "2026-11-15": 1}   # and 0 on the other 6 of the 14 days
WEEKS = {"2026-11-02": VERSIONS[V1], "2026-11-09": VERSIONS[V2]}        # the versions split at the week
ACCEPTED_BY_ORDER = {"venous-duplex": 1, "d-dimer": 1, "(unknown)": 1}
OVERRIDE_REASONS = {"already-assessed": 1, "patient-declined": 1, "not-clinically-relevant": 1, "(other)": 2,
                    "(none)": 1}
OVERRIDE_REASONS_HL7 = {"action-completed": 1, "patient-refuses": 1, "cds-not-applicable": 1, "limited-time": 1,
                        "(unmapped)": 1, "(none)": 1}
