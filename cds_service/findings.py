"""What a rule returns: a finding with the evidence that triggered it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

TOPICS = (
    "dvt-likely",
    "dvt-possible",
    "pe-suspected",
    "cauda-equina",
    "neuro-deficit",
    "septic-arthritis",
    "acute-limb-ischemia",
    "cannot-bear-weight",
    "acute-knee-injury",
    "persistent-pain",
    "pad-claudication",
    "bakers-cyst",
    "sciatica",
    "msk-self-care",
    "record-incomplete",
)

INDICATOR_RANK = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Evidence:
    """One fact behind a finding, traceable to a resource and a date."""

    label: str
    reference: str | None = None
    when: date | None = None
    value: str | None = None
    points: float | None = None
    side: str | None = None  # left | right | bilateral, when the record names it
    quote: str | None = None  # the sentence of a note or free text that said it (≤ 150 characters)

    def markdown(self) -> str:
        """One line of card detail, e.g. `Pain in left lower leg (Condition/c1, 2026-11-01)`."""
        text = self.label
        if self.side and self.side not in text.lower():
            text += f" ({self.side})"
        text += f": {self.value}" if self.value else ""
        where = ", ".join(p for p in (self.reference, self.when and self.when.isoformat()) if p)
        text = f"{text} ({where})" if where else text
        return f'{text}: "{self.quote}"' if self.quote else text


@dataclass(frozen=True)
class Finding:
    """A rule's result: the topic of the card to show and everything its text needs."""

    topic: str
    evidence: tuple[Evidence, ...]
    variant: str | None = None
    flags: frozenset[str] = frozenset()
    values: dict[str, str] = field(default_factory=dict)
    not_documented: tuple[str, ...] = ()
    thresholds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.topic not in TOPICS:
            raise ValueError(f"unknown finding topic {self.topic!r}")
