"""The knowledge catalog: every file under cards/, loaded and checked once at start-up.

The catalog does not know the rules: what the rules need of it (concepts, thresholds, card
placeholders) comes in as `Requirements` from the layer that knows both (`evaluation.load_catalog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..findings import Finding
from ..knowledge_files import KnowledgeError, read_yaml
from ..service_definition import ServiceDefinition, load_service_definition
from .answers import Answers, load_answers
from .cards import CardDefinition, OrderDefinition, load_card_definitions, load_orders
from .codes import CodeList, load_code_lists, merge_code_lists, require_concepts
from .language import ContextRules, Language, load_context_rules, load_language
from .quantities import Thresholds, UnitTable, load_thresholds, load_units
from .scores import ScoreWording, load_scores

__all__ = ["Knowledge", "KnowledgeError", "Requirements", "load_knowledge"]


@dataclass(frozen=True)
class Requirements:
    """What the rules read from the knowledge; a file that lacks one stops start-up."""

    concepts: frozenset[str] = frozenset()
    thresholds: frozenset[str] = frozenset()
    placeholders: Mapping[str, frozenset[str]] = field(default_factory=dict)
    scores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # score key → its item keys


@dataclass(frozen=True)
class Knowledge:
    """All clinical knowledge and text the service uses, read-only after loading."""

    directory: Path
    version: str
    service: ServiceDefinition
    systems: dict[str, str]
    code_lists: dict[str, CodeList]
    language: Language
    context_rules: ContextRules
    answers: Answers
    thresholds: Thresholds
    units: UnitTable
    scope_concepts: tuple[str, ...]
    orders: dict[str, OrderDefinition]
    cards: dict[str, CardDefinition]
    scores: dict[str, ScoreWording]

    def indicator_of(self, finding: Finding) -> str:
        """The card indicator for a finding (a variant may raise or lower it)."""
        return self.cards[finding.topic].text(finding.variant).indicator

    def summary(self) -> dict[str, int | str]:
        return {
            "version": self.version,
            "code_lists": len(self.code_lists),
            "cards": len(self.cards),
            "orders": len(self.orders),
            "thresholds": len(self.thresholds),
        }


def _systems(path: Path) -> dict[str, str]:
    raw = read_yaml(path).get("systems")
    if not isinstance(raw, dict) or not raw:
        raise KnowledgeError(path, "missing the 'systems' mapping")
    return {str(k): str(v) for k, v in raw.items()}


def _scope(path: Path, known: set[str]) -> tuple[str, ...]:
    concepts = read_yaml(path).get("complaint_concepts")
    if not isinstance(concepts, list) or not concepts:
        raise KnowledgeError(path, "missing 'complaint_concepts'")
    unknown = sorted(set(map(str, concepts)) - known)
    if unknown:
        raise KnowledgeError(path, f"no code list for scope concepts: {', '.join(unknown)}")
    return tuple(map(str, concepts))


def load_knowledge(directory: Path, requirements: Requirements) -> Knowledge:
    """Load every knowledge file; a broken file raises KnowledgeError naming file and problem."""
    systems = _systems(directory / "systems.yaml")
    code_lists = load_code_lists(directory / "codes", systems)
    local = directory / "local" / "codes"
    if local.is_dir():  # a hospital's own code lists extend the shipped ones, concept by concept
        for concept, extra in load_code_lists(local, systems).items():
            code_lists[concept] = merge_code_lists(code_lists.get(concept), extra)
    require_concepts(code_lists, requirements.concepts, directory / "codes")
    orders = load_orders(directory / "orders.yaml", systems)
    service = load_service_definition(directory)
    return Knowledge(
        directory=directory,
        version=str(read_yaml(directory / "service.yaml").get("version", "unversioned")),
        service=service,
        systems=systems,
        code_lists=code_lists,
        language=load_language(directory / "text" / "language.yaml"),
        context_rules=load_context_rules(directory / "text" / "context.yaml"),
        answers=load_answers(directory / "answers.yaml", systems, set(code_lists)),
        thresholds=load_thresholds(directory / "thresholds.yaml", set(requirements.thresholds)),
        units=load_units(directory / "units.yaml"),
        scope_concepts=_scope(directory / "scope.yaml", set(code_lists)),
        orders=orders,
        cards=load_card_definitions(directory / "cards", requirements.placeholders, orders),
        scores=load_scores(directory / "scores.yaml", requirements.scores),
    )
