"""The knowledge catalog: every file under cards/, loaded and cross-checked once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..findings import Finding
from ..knowledge_files import KnowledgeError, read_yaml
from ..rules import CONCEPTS_USED, PLACEHOLDERS, THRESHOLDS_USED
from ..service_definition import ServiceDefinition, load_service_definition
from .cards import CardDefinition, OrderDefinition, load_card_definitions, load_orders
from .codes import CodeList, load_code_lists, require_concepts
from .concept_index import ConceptIndex
from .quantities import Thresholds, UnitTable, load_thresholds, load_units

__all__ = ["Knowledge", "KnowledgeError", "load_knowledge"]


@dataclass(frozen=True)
class Knowledge:
    """All clinical knowledge and text the service uses, read-only after loading."""

    directory: Path
    service: ServiceDefinition
    systems: dict[str, str]
    code_lists: dict[str, CodeList]
    index: ConceptIndex
    thresholds: Thresholds
    units: UnitTable
    scope_concepts: tuple[str, ...]
    orders: dict[str, OrderDefinition]
    cards: dict[str, CardDefinition]

    def indicator_of(self, finding: Finding) -> str:
        """The card indicator for a finding (a variant may raise or lower it)."""
        return self.cards[finding.topic].text(finding.variant).indicator

    def summary(self) -> dict[str, int]:
        return {
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


def load_knowledge(directory: Path) -> Knowledge:
    """Load every knowledge file; a broken file raises KnowledgeError naming file and problem."""
    systems = _systems(directory / "systems.yaml")
    code_lists = load_code_lists(directory / "codes", systems)
    local = directory / "local" / "codes"
    if local.is_dir():  # a hospital's own code lists extend the shipped ones, concept by concept
        for concept, extra in load_code_lists(local, systems).items():
            code_lists[concept] = _merge(code_lists.get(concept), extra)
    require_concepts(code_lists, CONCEPTS_USED, directory / "codes")
    orders = load_orders(directory / "orders.yaml", systems)
    return Knowledge(
        directory=directory,
        service=load_service_definition(directory),
        systems=systems,
        code_lists=code_lists,
        index=ConceptIndex(code_lists),
        thresholds=load_thresholds(directory / "thresholds.yaml", set(THRESHOLDS_USED)),
        units=load_units(directory / "units.yaml"),
        scope_concepts=_scope(directory / "scope.yaml", set(code_lists)),
        orders=orders,
        cards=load_card_definitions(directory / "cards", PLACEHOLDERS, orders),
    )


def _merge(base: CodeList | None, extra: CodeList) -> CodeList:
    if base is None:
        return extra
    merged = CodeList(base.concept, base.title, dict(base.exact), {}, list(base.phrases))
    merged.exact.update(extra.exact)
    for system in {*base.prefixes, *extra.prefixes}:
        entries = [*base.prefixes.get(system, []), *extra.prefixes.get(system, [])]
        merged.prefixes[system] = sorted(entries, key=lambda item: -len(item[0]))
    merged.phrases.extend(extra.phrases)
    return merged
