"""Card definitions (cards/cards/*.yaml) and orders (cards/orders.yaml), checked at start-up."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..findings import TOPICS
from ..knowledge_files import KnowledgeError, read_yaml, require_keys

INDICATORS = ("info", "warning", "critical")
# What the renderer gives every card: the evidence in clinical words, the scored items of the Wells and PE
# Wells tables (empty on other cards), what is not documented, the record items that could not be read.
COMMON_PLACEHOLDERS = frozenset({"evidence", "not_documented", "thresholds", "age", "wells_items", "pe_items",
                                 "unread"})
SAMPLE_VALUE = "x" * 4  # what a summary placeholder is assumed to hold when lengths are checked
SUMMARY_MAX = 139
# The card must be read in two seconds: at most this many non-empty markdown lines and characters in
# the detail (render.py keeps the evidence within them; the full picture is on the companion page).
DETAIL_MAX_LINES = 10
DETAIL_MAX_CHARS = 700
# Cards that always link to the companion page (the Wells calculator and the full evidence)
COMPANION_TOPICS = frozenset({"dvt-likely", "dvt-possible"})


@dataclass(frozen=True)
class DetailLine:
    """One line of a detail template and the placeholders it uses (a line whose placeholders are all
    empty is left out of the card)."""

    template: str
    names: frozenset[str]


@dataclass(frozen=True)
class VariantText:
    summary: str
    detail: str
    indicator: str
    pathway: tuple[str, ...] = ()  # the full pathway, step by step, for the companion page
    lines: tuple[DetailLine, ...] = ()  # the detail split once at start-up


def _detail_lines(detail: str) -> tuple[DetailLine, ...]:
    return tuple(DetailLine(line, frozenset(placeholders(line))) for line in detail.splitlines())


@dataclass(frozen=True)
class SuggestionDefinition:
    label: str
    order: str
    recommended: bool
    unless: str | None  # left out when the finding has this flag
    only: str | None = None  # shown only when the finding has this flag


@dataclass(frozen=True)
class OrderDefinition:
    key: str
    display: str
    codings: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class CardDefinition:
    """Everything a card says, except the evidence, which the finding brings."""

    topic: str
    display: str
    base: VariantText
    variants: Mapping[str, VariantText]
    links: tuple[tuple[str, str], ...]
    suggestions: tuple[SuggestionDefinition, ...]
    override_reasons: tuple[tuple[str, str], ...]
    companion: str | None = None  # label of the link to the companion page; None: no link

    def text(self, variant: str | None) -> VariantText:
        return self.variants.get(variant or "", self.base)


def placeholders(template: str) -> set[str]:
    """Names used as {placeholders} in a template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _check_text(path: Path, where: str, summary: str, detail: str, allowed: frozenset[str]) -> None:
    for field_name, template in (("summary", summary), ("detail", detail)):
        try:
            used = placeholders(template)
        except ValueError as exc:
            raise KnowledgeError(path, f"{where}{field_name}: broken placeholder: {exc}") from None
        unknown = sorted(used - allowed)
        if unknown:
            raise KnowledgeError(path, f"{where}{field_name}: unknown placeholder(s) {unknown}")
    sample = summary.format_map({name: SAMPLE_VALUE for name in placeholders(summary)})
    if len(sample) > SUMMARY_MAX:
        raise KnowledgeError(path, f"{where}summary is {len(sample)} characters (limit {SUMMARY_MAX})")
    lines = [line for line in detail.splitlines() if line.strip()]
    if len(lines) > DETAIL_MAX_LINES:
        raise KnowledgeError(path, f"{where}detail has {len(lines)} non-empty lines (limit {DETAIL_MAX_LINES})")
    fixed = sum(len(line) for line in lines) - sum(len(name) + 2 for line in lines for name in placeholders(line))
    if fixed > DETAIL_MAX_CHARS - 150:
        raise KnowledgeError(path, f"{where}detail has {fixed} characters of fixed text: leave at least 150 of "
                                   f"the {DETAIL_MAX_CHARS} for the evidence")


def _pathway(path: Path, where: str, raw: Any, fallback: tuple[str, ...]) -> tuple[str, ...]:
    if raw is None:
        return fallback
    if not isinstance(raw, list) or not all(isinstance(step, str) and step.strip() for step in raw):
        raise KnowledgeError(path, f"{where}pathway must be a list of steps (text)")
    return tuple(step.strip() for step in raw)


def _variant(path: Path, where: str, raw: Mapping[str, Any], fallback: VariantText | None,
             allowed: frozenset[str]) -> VariantText:
    summary = raw.get("summary", fallback.summary if fallback else None)
    detail = raw.get("detail", fallback.detail if fallback else None)
    indicator = raw.get("indicator", fallback.indicator if fallback else None)
    if not isinstance(summary, str) or not isinstance(detail, str):
        raise KnowledgeError(path, f"{where}summary and detail must be text")
    if indicator not in INDICATORS:
        raise KnowledgeError(path, f"{where}indicator must be one of {INDICATORS}")
    _check_text(path, where, summary, detail, allowed)
    pathway = _pathway(path, where, raw.get("pathway"), fallback.pathway if fallback else ())
    return VariantText(summary.strip(), detail.strip(), str(indicator), pathway, _detail_lines(detail.strip()))


def load_card_definition(
    path: Path, allowed: frozenset[str], orders: Mapping[str, OrderDefinition]
) -> CardDefinition:
    """Read and check one card file."""
    document = read_yaml(path)
    require_keys(path, document, ("topic", "display", "indicator", "summary", "detail"))
    topic = str(document["topic"])
    if topic != path.stem or topic not in TOPICS:
        raise KnowledgeError(path, f"topic {topic!r} must be a known topic equal to the file name")
    base = _variant(path, "", document, None, allowed)
    variants = {
        str(name): _variant(path, f"variant {name}: ", raw or {}, base, allowed)
        for name, raw in (document.get("variants") or {}).items()
    }
    links = []
    for link in document.get("links") or []:
        require_keys(path, link, ("label", "url"))
        if not str(link["url"]).startswith("https://"):
            raise KnowledgeError(path, f"link {link['label']!r} must be an absolute https URL")
        links.append((str(link["label"]), str(link["url"])))
    suggestions = []
    for raw in document.get("suggestions") or []:
        require_keys(path, raw, ("label", "order"))
        if raw["order"] not in orders:
            raise KnowledgeError(path, f"suggestion order {raw['order']!r} is not in orders.yaml")
        suggestions.append(SuggestionDefinition(
            str(raw["label"]), str(raw["order"]), bool(raw.get("recommended", False)), raw.get("unless"),
            raw.get("only"),
        ))
    reasons = []
    for raw in document.get("override_reasons") or []:
        require_keys(path, raw, ("code", "display"))
        reasons.append((str(raw["code"]), str(raw["display"])))
    companion = document.get("companion")
    if companion is not None and (not isinstance(companion, str) or not companion.strip()):
        raise KnowledgeError(path, "companion must be the label of the link to the companion page")
    critical = any(v.indicator == "critical" for v in (base, *variants.values()))
    if companion is None and (critical or topic in COMPANION_TOPICS):
        raise KnowledgeError(path, "every critical and DVT card links to the companion page: add `companion: <label>`")
    return CardDefinition(topic, str(document["display"]), base, variants, tuple(links),
                          tuple(suggestions), tuple(reasons), companion.strip() if companion else None)


def load_orders(path: Path, systems: Mapping[str, str]) -> dict[str, OrderDefinition]:
    """Read orders.yaml: the codes of the draft ServiceRequests that suggestions create."""
    document = read_yaml(path)
    raw_orders = document.get("orders")
    if not isinstance(raw_orders, dict) or not raw_orders:
        raise KnowledgeError(path, "missing the 'orders' mapping")
    orders = {}
    for key, raw in raw_orders.items():
        require_keys(path, raw, ("display", "coding"))
        codings = []
        for coding in raw["coding"]:
            require_keys(path, coding, ("system", "code", "display"))
            codings.append({
                "system": systems.get(coding["system"], coding["system"]),
                "code": str(coding["code"]),
                "display": str(coding["display"]),
            })
        orders[str(key)] = OrderDefinition(str(key), str(raw["display"]), tuple(codings))
    return orders


def load_card_definitions(
    directory: Path, allowed_by_topic: Mapping[str, frozenset[str]],
    orders: Mapping[str, OrderDefinition],
) -> dict[str, CardDefinition]:
    """Every card definition; each topic must have exactly one file."""
    definitions = {}
    for path in sorted(directory.glob("*.yaml")):
        allowed = COMMON_PLACEHOLDERS | allowed_by_topic.get(path.stem, frozenset())
        definitions[path.stem] = load_card_definition(path, allowed, orders)
    missing = sorted(set(TOPICS) - set(definitions))
    if missing:
        raise KnowledgeError(directory, f"card definitions missing for topics: {', '.join(missing)}")
    return definitions
