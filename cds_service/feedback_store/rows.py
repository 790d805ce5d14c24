"""What the analytics read of the store, one plain record per row (no SQLAlchemy here): the measures
(`cds_service/analytics/measures.py`) take these and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ShownRow:
    """One card shown: never a patient id, only its keyed hash (`patient_key`, None when not recorded)."""

    card_uuid: str
    topic: str
    indicator: str
    shown_at: datetime                     # UTC
    knowledge_version: str | None = None
    patient_key: str | None = None
    suggestions: Mapping[str, str] = field(default_factory=dict)   # suggestion uuid → order key


@dataclass(frozen=True)
class OutcomeRow:
    """One feedback item on a card shown (its comment is never read: only whether there was one)."""

    feedback_id: int
    card_uuid: str
    outcome: str                           # accepted | overridden
    outcome_timestamp: str                 # as the client sent it (RFC 3339)
    accepted_suggestions: tuple[str, ...] = ()
    override_code: str | None = None
    override_system: str | None = None
    has_comment: bool = False


@dataclass(frozen=True)
class AnalyticsRows:
    """The cards shown from `since - lookback` to `until` (oldest first; those before `since` only tell
    whether a later card repeats one), the feedback on the cards shown from `since`, and how many feedback
    items received in the window name a card the store has no record of."""

    cards: tuple[ShownRow, ...]
    outcomes: tuple[OutcomeRow, ...]
    unmatched_feedback: int = 0
