"""The service's evaluation as the kit uses it: one knowledge directory, cases in, card results out.

This is the only module of the kit that touches the service's evaluation API, so a change of that API
is one change here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..evaluation import Evaluator, load_catalog
from ..knowledge import Knowledge
from ..render import CardSource
from .outcome import CardResult, card_results, order_names

SOURCE = CardSource("knee-cds test")


def load(cards_dir: Path) -> Knowledge:
    """The knowledge of a directory, loaded and checked as the service loads it at start-up."""
    return load_catalog(cards_dir)


@dataclass
class Engine:
    """Evaluates resources against one knowledge catalog, as `knee-cds evaluate` and the service do."""

    knowledge: Knowledge

    def __post_init__(self) -> None:
        self._evaluator = Evaluator(self.knowledge, SOURCE)
        self.order_codes = order_names(self.knowledge.orders)

    @classmethod
    def from_directory(cls, cards_dir: Path) -> Engine:
        return cls(load(cards_dir))

    def evaluate(self, resources: Iterable[dict[str, Any]], patient_id: str, now: datetime) -> Any:
        """The service's Evaluation (record, findings, cards)."""
        return self._evaluator.evaluate(list(resources), patient_id, now)

    def cards(self, resources: Iterable[dict[str, Any]], patient_id: str,
              now: datetime) -> tuple[CardResult, ...]:
        return card_results(self.evaluate(resources, patient_id, now), self.knowledge.orders)

    @property
    def topics(self) -> set[str]:
        return set(self.knowledge.cards)
