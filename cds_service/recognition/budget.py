"""The evaluation budget of one request: how much text it may read and by when it must answer.

Text is what costs (the clinical text reader); codes, quantities and answers cost little and are always
read, so a flood of prose can never hide a coded fever. Whatever a request holds, its recognition reads at
most `max_texts` texts and `max_chars` characters of text, and reads no text past the deadline. What the
budget leaves unread is named in the answer (the record-incomplete card), never silently dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BudgetLimits:
    """Per-request limits (settings: CDS_TEXT_MAX_CHARS, CDS_TEXT_MAX_COUNT, CDS_EVALUATION_DEADLINE_MS)."""

    max_chars: int = 120_000
    max_texts: int = 400
    deadline_seconds: float = 0.35
    label_max_chars: int = 2_000  # a CodeableConcept text, a display or a valueString
    note_max_chars: int = 12_000  # one clinical note
    max_notes: int = 20


@dataclass
class TextBudget:
    """What is left of one request's budget; created per request."""

    limits: BudgetLimits
    started: float = field(default_factory=time.monotonic)
    chars: int = 0
    texts: int = 0

    def expired(self) -> bool:
        return time.monotonic() - self.started > self.limits.deadline_seconds

    def spent(self) -> str | None:
        """Why no more text may be read (deadline or budget), or None while some may."""
        if self.expired():
            return "deadline"
        if self.texts >= self.limits.max_texts or self.chars >= self.limits.max_chars:
            return "budget"
        return None

    def take(self, length: int) -> str | None:
        """Account for a text of `length` characters; the reason it may not be read, or None."""
        if self.expired():
            return "deadline"
        if self.texts + 1 > self.limits.max_texts or self.chars + length > self.limits.max_chars:
            return "budget"
        self.texts += 1
        self.chars += length
        return None
