"""Thresholds (cards/thresholds.yaml) and UCUM unit normalisation (cards/units.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..knowledge_files import KnowledgeError, read_yaml, require_keys


@dataclass(frozen=True)
class Threshold:
    name: str
    value: float
    label: str
    meaning: str
    source: str

    def text(self) -> str:
        """The label with its value, e.g. `fever ≥ 38 °C`."""
        number = f"{self.value:g}"
        return self.label.format(value=number)


class Thresholds(Mapping[str, float]):
    """Named numbers the rules compare with, read-only."""

    def __init__(self, items: dict[str, Threshold]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> float:
        return self._items[name].value

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def describe(self, name: str) -> Threshold:
        return self._items[name]


def load_thresholds(path: Path, needed: set[str]) -> Thresholds:
    """Read thresholds.yaml; every threshold the rules use must be present and numeric."""
    document = read_yaml(path)
    raw = document.get("thresholds")
    if not isinstance(raw, dict):
        raise KnowledgeError(path, "missing the 'thresholds' mapping")
    items: dict[str, Threshold] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise KnowledgeError(path, f"{name}: must be a mapping with value, meaning, source")
        require_keys(path, spec, ("label", "meaning", "source"))
        if "{value}" not in str(spec["label"]):
            raise KnowledgeError(path, f"{name}: label must contain {{value}}")
        value = spec.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise KnowledgeError(path, f"{name}: value must be a number")
        items[name] = Threshold(
            name, float(value), str(spec["label"]), str(spec["meaning"]), str(spec["source"])
        )
    missing = sorted(needed - set(items))
    if missing:
        raise KnowledgeError(path, f"thresholds missing: {', '.join(missing)}")
    return Thresholds(items)


@dataclass(frozen=True)
class Quantity:
    """A measured value in its canonical unit."""

    value: float
    unit: str
    display: str

    def __str__(self) -> str:
        number = f"{self.value:.2f}".rstrip("0").rstrip(".")
        return f"{number} {self.display}".strip()


@dataclass
class QuantityKind:
    canonical: str
    display: str
    units: dict[str, tuple[float, float]]
    basis_by_code: dict[str, str] = field(default_factory=dict)
    plain_units: dict[str, float] = field(default_factory=dict)
    unitless: tuple[tuple[float, float, str], ...] = ()  # (from, to, unit) for a value sent without a unit

    def unit_for_bare(self, value: float) -> str | None:
        """The unit a value without one must have, when only one unit gives a plausible value."""
        for low, high, unit in self.unitless:
            if low <= value <= high:
                return unit
        return None


class UnitTable:
    """Converts Observation quantities of known concepts to their canonical unit."""

    def __init__(self, kinds: dict[str, QuantityKind], concepts: dict[str, str]) -> None:
        self._kinds = kinds
        self._concepts = concepts

    def measures(self, concept: str) -> bool:
        """True when the concept is a measurement with a unit kind (temperature, heart rate, ...)."""
        return concept in self._concepts

    def normalise(
        self, concept: str, quantity: Mapping[str, Any], loinc_codes: tuple[str, ...] = ()
    ) -> Quantity | None:
        """Canonical quantity, or None when the value or unit is missing or unknown."""
        kind = self._kinds.get(self._concepts.get(concept, ""))
        value = quantity.get("value")
        if kind is None or isinstance(value, bool) or not isinstance(value, int | float):
            return None
        for unit in (quantity.get("code"), quantity.get("unit")):
            if not isinstance(unit, str):
                continue
            if unit in kind.units:
                scale, offset = kind.units[unit]
                return Quantity((value + offset) * scale, kind.canonical, kind.display)
            if unit in kind.plain_units:
                basis = next((kind.basis_by_code[c] for c in loinc_codes if c in kind.basis_by_code), None)
                if basis is not None:
                    factor = kind.plain_units[unit] * (2.0 if basis == "DDU" else 1.0)
                    return Quantity(value * factor, kind.canonical, kind.display)
        if _unitless(quantity):
            if kind.canonical == "1":
                return Quantity(float(value), kind.canonical, kind.display)
            unit = kind.unit_for_bare(float(value))
            if unit is not None:
                scale, offset = kind.units[unit]
                return Quantity((value + offset) * scale, kind.canonical, kind.display)
        return None


def _unitless(quantity: Mapping[str, Any]) -> bool:
    return all(not isinstance(quantity.get(k), str) or not quantity[k].strip() for k in ("code", "unit"))


def load_units(path: Path) -> UnitTable:
    """Read units.yaml."""
    document = read_yaml(path)
    require_keys(path, document, ("quantities", "concepts"))
    kinds: dict[str, QuantityKind] = {}
    for name, spec in document["quantities"].items():
        if not isinstance(spec, dict):
            raise KnowledgeError(path, f"quantity {name!r} must be a mapping")
        require_keys(path, spec, ("canonical", "units"))
        units: dict[str, tuple[float, float]] = {}
        unitless = []
        for band in spec.get("unitless") or []:
            if not isinstance(band, dict) or not all(isinstance(band.get(k), int | float) for k in ("from", "to")):
                raise KnowledgeError(path, f"{name}: each unitless band needs numeric 'from' and 'to'")
            if band.get("unit") not in spec["units"]:
                raise KnowledgeError(path, f"{name}: unitless band unit {band.get('unit')!r} is not one of its units")
            unitless.append((float(band["from"]), float(band["to"]), str(band["unit"])))
        for unit, conversion in spec["units"].items():
            if not isinstance(conversion, dict) or not isinstance(conversion.get("scale"), int | float):
                raise KnowledgeError(path, f"{name}: unit {unit!r} needs a numeric scale")
            units[str(unit)] = (float(conversion["scale"]), float(conversion.get("offset", 0.0)))
        kinds[name] = QuantityKind(
            canonical=str(spec["canonical"]),
            display=str(spec.get("display", spec["canonical"])),
            units=units,
            basis_by_code={str(k): str(v) for k, v in (spec.get("basis_by_code") or {}).items()},
            plain_units={str(k): float(v) for k, v in (spec.get("plain_units") or {}).items()},
            unitless=tuple(unitless),
        )
    concepts = {str(k): str(v) for k, v in document["concepts"].items()}
    unknown = sorted(v for v in concepts.values() if v not in kinds)
    if unknown:
        raise KnowledgeError(path, f"concepts refer to unknown quantities: {', '.join(unknown)}")
    return UnitTable(kinds, concepts)
