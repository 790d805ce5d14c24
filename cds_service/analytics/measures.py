"""The alert-fatigue measures, computed from the store's rows (pure: no Flask, no SQL, no clock).

The unit is a **card shown** (the service's own denominator: EHRs never report a card that was ignored).
Definitions (README "Feedback analytics" gives them with their sources):

- `shown`: cards returned whose record reached the store; `accepted` / `overridden`: cards whose first
  reported outcome (earliest `outcomeTimestamp`) is that one; `no_outcome` = shown − accepted − overridden.
- `acceptance_rate` = accepted / shown, `override_rate` = overridden / shown (Ancker et al. 2017);
  `answered_override_rate` = overridden / (accepted + overridden), the override rate of studies where
  every alert must be answered.
- time to action = `outcomeTimestamp` − the time the card was shown, in seconds, over the cards with an
  outcome (McDaniel et al. 2016, "dwell time"): median (`p50`) and 90th percentile, by linear
  interpolation between order statistics (Hyndman & Fan type 7, as PostgreSQL's percentile_cont). A
  timestamp before the card was shown (clocks that disagree) or unreadable is left out and counted.
- repeat: the same topic shown for the same patient (keyed hash) within the repeat window
  (cards/analytics.yaml, 24 h) before; `repeat_rate` = repeats / cards with a patient hash.
- accepted suggestions by order; override reasons (ours, and mapped to HL7's non-adherence codes);
  comments are counted, never read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..feedback_store.rows import AnalyticsRows, OutcomeRow, ShownRow
from .config import AnalyticsConfig

PERIODS = ("day", "week")
NONE = "(none)"              # overridden without a reason code
OTHER = "(other)"            # a code that is neither ours nor HL7's: counted, never shown (a client's free string)
UNMAPPED = "(unmapped)"      # no HL7 code corresponds (or a code that is not ours)
NOT_RECORDED = "(not recorded)"   # a knowledge version missing on rows recorded before the analytics
UNKNOWN_SUGGESTION = "(unknown)"  # an accepted suggestion id that is not one of the card's suggestions


@dataclass(frozen=True)
class Window:
    """The cards shown from `since` (inclusive) to `until` (exclusive), UTC, in days or ISO weeks."""

    since: datetime
    until: datetime
    period: str = "day"

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}")
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("since and until must carry a time zone")
        if self.until <= self.since:
            raise ValueError("until must be after since")

    def period_start(self, moment: datetime) -> date:
        """The UTC day, or the Monday of the ISO week, that `moment` falls in."""
        day = moment.astimezone(UTC).date()
        return day - timedelta(days=day.weekday()) if self.period == "week" else day

    def periods(self) -> list[date]:
        """Every period the window touches, oldest first."""
        step = timedelta(days=7 if self.period == "week" else 1)
        current, last = self.period_start(self.since), self.period_start(self.until - timedelta(microseconds=1))
        out = []
        while current <= last:
            out.append(current)
            current += step
        return out


def parse_timestamp(value: str) -> datetime | None:
    """An RFC 3339 timestamp as UTC (a time without a zone is taken as UTC); None when unreadable."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def percentile(ordered: list[float], fraction: float) -> float | None:
    """Linear interpolation between order statistics (Hyndman & Fan type 7); `ordered` is sorted."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


@dataclass(frozen=True)
class Resolved:
    """A card's outcome: its first reported feedback, with what the measures read of it."""

    outcome: str
    seconds: float | None                  # time to action; None when left out (see `excluded`)
    accepted_orders: tuple[str, ...] = ()
    our_reason: str | None = None          # overridden: our code, NONE or OTHER
    hl7_reason: str | None = None          # overridden: an HL7 code, NONE or UNMAPPED


@dataclass
class Measures:
    """The measures of one group of cards (a topic, an indicator, a version, a period, or all)."""

    shown: int = 0
    accepted: int = 0
    overridden: int = 0
    repeat_base: int = 0
    repeats: int = 0
    feedback_items: int = 0
    comments: int = 0
    time_excluded: int = 0
    times: list[float] = field(default_factory=list)
    accepted_by_order: Counter[str] = field(default_factory=Counter)
    override_reasons: Counter[str] = field(default_factory=Counter)
    override_reasons_hl7: Counter[str] = field(default_factory=Counter)

    def add(self, resolved: Resolved | None, repeat: bool | None, items: int, comments: int) -> None:
        self.shown += 1
        self.feedback_items += items
        self.comments += comments
        if repeat is not None:
            self.repeat_base += 1
            self.repeats += int(repeat)
        if resolved is None:
            return
        if resolved.outcome == "accepted":
            self.accepted += 1
            self.accepted_by_order.update(resolved.accepted_orders)
        else:
            self.overridden += 1
            self.override_reasons[resolved.our_reason or NONE] += 1
            self.override_reasons_hl7[resolved.hl7_reason or NONE] += 1
        if resolved.seconds is None:
            self.time_excluded += 1
        else:
            self.times.append(resolved.seconds)

    @property
    def no_outcome(self) -> int:
        return self.shown - self.accepted - self.overridden

    def scalars(self) -> dict[str, Any]:
        """The numeric measures, by their exported names."""
        ordered = sorted(self.times)
        p50, p90 = percentile(ordered, 0.5), percentile(ordered, 0.9)
        return {
            "shown": self.shown,
            "accepted": self.accepted,
            "overridden": self.overridden,
            "no_outcome": self.no_outcome,
            "acceptance_rate": _rate(self.accepted, self.shown),
            "override_rate": _rate(self.overridden, self.shown),
            "answered_override_rate": _rate(self.overridden, self.accepted + self.overridden),
            "time_to_action_n": len(ordered),
            "time_to_action_p50_s": None if p50 is None else round(p50, 3),
            "time_to_action_p90_s": None if p90 is None else round(p90, 3),
            "time_to_action_excluded": self.time_excluded,
            "repeat_base": self.repeat_base,
            "repeats": self.repeats,
            "repeat_rate": _rate(self.repeats, self.repeat_base),
            "feedback_items": self.feedback_items,
            "comments": self.comments,
        }


@dataclass
class Report:
    """Every grouping of one window's measures."""

    window: Window
    totals: Measures = field(default_factory=Measures)
    topics: dict[str, Measures] = field(default_factory=dict)
    indicators: dict[str, Measures] = field(default_factory=dict)
    versions: dict[str, Measures] = field(default_factory=dict)
    periods: dict[date, Measures] = field(default_factory=dict)
    topic_periods: dict[tuple[str, date], Measures] = field(default_factory=dict)
    topic_versions: dict[tuple[str, str], Measures] = field(default_factory=dict)
    unmatched_feedback: int = 0


def classify_reason(code: str | None, system: str | None, config: AnalyticsConfig) -> tuple[str, str]:
    """(our code | NONE | OTHER, HL7 code | NONE | UNMAPPED) of a reported override reason. Only codes
    the knowledge knows are ever named: anything else a client sent is counted as OTHER."""
    if not code:
        return NONE, NONE
    if system in (None, "", config.our_system) and code in config.our_codes:
        return code, config.hl7_of(code) or UNMAPPED
    if system == config.hl7_system and code in config.hl7_codes:
        return OTHER, code
    return OTHER, UNMAPPED


def resolve(card: ShownRow, items: list[OutcomeRow], config: AnalyticsConfig) -> Resolved | None:
    """The card's first reported outcome (earliest outcomeTimestamp; unreadable ones last, by arrival)."""
    if not items:
        return None
    stamped = [(parse_timestamp(item.outcome_timestamp), item) for item in items]
    stamped.sort(key=lambda pair: (pair[0] is None, pair[0] or card.shown_at, pair[1].feedback_id))
    moment, first = stamped[0]
    seconds = (moment - card.shown_at).total_seconds() if moment is not None else None
    if seconds is not None and seconds < 0:
        seconds = None
    if first.outcome == "accepted":
        orders = tuple(card.suggestions.get(s) or UNKNOWN_SUGGESTION for s in first.accepted_suggestions)
        return Resolved("accepted", seconds, accepted_orders=orders)
    ours, hl7 = classify_reason(first.override_code, first.override_system, config)
    return Resolved("overridden", seconds, our_reason=ours, hl7_reason=hl7)


def _group(groups: dict[Any, Measures], key: Any) -> Measures:
    found = groups.get(key)
    if found is None:
        found = groups[key] = Measures()
    return found


def _repeat_flags(cards: Iterable[ShownRow], window: timedelta) -> dict[str, bool | None]:
    """card uuid → whether it repeats a card of its topic for its patient within `window` (None: no hash)."""
    last_seen: dict[tuple[str, str], datetime] = {}
    flags: dict[str, bool | None] = {}
    for card in cards:  # oldest first
        if card.patient_key is None:
            flags[card.card_uuid] = None
            continue
        key = (card.topic, card.patient_key)
        previous = last_seen.get(key)
        flags[card.card_uuid] = previous is not None and card.shown_at - previous <= window
        last_seen[key] = card.shown_at
    return flags


def compute(rows: AnalyticsRows, window: Window, config: AnalyticsConfig) -> Report:
    """Every grouping of the measures of the cards shown in `window`."""
    by_card: dict[str, list[OutcomeRow]] = {}
    for item in rows.outcomes:
        by_card.setdefault(item.card_uuid, []).append(item)
    cards = sorted(rows.cards, key=lambda c: (c.shown_at, c.card_uuid))
    repeats = _repeat_flags(cards, config.repeat_window)
    report = Report(window, unmatched_feedback=rows.unmatched_feedback)
    for start in window.periods():
        report.periods[start] = Measures()
    topics_seen: set[str] = set()
    for card in cards:
        if not window.since <= card.shown_at < window.until:
            continue  # read only to tell whether a later card repeats it
        items = by_card.get(card.card_uuid, [])
        resolved = resolve(card, items, config)
        comments = sum(1 for item in items if item.has_comment)
        version = card.knowledge_version or NOT_RECORDED
        start = window.period_start(card.shown_at)
        topics_seen.add(card.topic)
        for measures in (report.totals, _group(report.topics, card.topic), _group(report.indicators, card.indicator),
                         _group(report.versions, version), _group(report.periods, start),
                         _group(report.topic_periods, (card.topic, start)),
                         _group(report.topic_versions, (card.topic, version))):
            measures.add(resolved, repeats.get(card.card_uuid), len(items), comments)
    for topic in topics_seen:  # every topic shown gets every period, so its chart has no gaps
        for start in window.periods():
            _group(report.topic_periods, (topic, start))
    return report


def ordered_items(counter: Mapping[str, int]) -> list[tuple[str, int]]:
    """Counts largest first, then by name; the placeholder buckets last."""
    return sorted(counter.items(), key=lambda kv: (kv[0].startswith("("), -kv[1], kv[0]))
