"""Observations to facts, whatever shape their value takes, component by component.

An Observation is a question (its code) and an answer (its value). The question's code list entry says
which concept it asks about and its polarity; the answer says present, absent or not recorded:
valueBoolean, a Yes/No answer code or text (cards/answers.yaml), valueInteger 1/0, a valueString read as
an answer or as clinical text, a quantity for measured concepts (cards/units.yaml) with its
interpretation (a temperature flagged H with no usable value is a fever), and dataAbsentReason, which
means "not recorded", never "absent". A value that is itself a finding (code "Calf exam", value "Calf
tenderness") records that finding. Chief-complaint questions (concept `complaint-narrative`) carry free
text: their value is read as the patient's complaint. Each `component` is read the same way, with the
parent's time and status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..knowledge.answers import Answers
from ..record.fhir_time import first_time, parse_fhir_datetime
from ..record.model import Fact
from .raw_json import listed
from .reading import Reading, facts_from, label_of, reference_of, status_of
from .resources import excluded_result
from .sides import body_site_side
from .statements import Statement

NARRATIVE = "complaint-narrative"
OBSERVATION_TIMES = ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
_PRESENT = {"yes": True, "no": False, "normal": False, "unknown": None}
ANSWERS_READ = frozenset({"valueCodeableConcept", "valueString"})  # answers that may name a finding themselves


def observation_time(raw: Mapping[str, Any]) -> datetime | None:
    return first_time(raw, *OBSERVATION_TIMES)


def observation_times(raws: Iterable[Mapping[str, Any]]) -> list[datetime | None]:
    """`observation_time` of each; an effectiveDateTime string is parsed once per call (a record's
    vital signs and labs share the times of their visits)."""
    parsed: dict[str, datetime | None] = {}
    times: list[datetime | None] = []
    for raw in raws:
        written = raw.get(OBSERVATION_TIMES[0])
        if type(written) is not str:
            times.append(observation_time(raw))
            continue
        if written not in parsed:
            parsed[written] = parse_fhir_datetime(written)
        when = parsed[written]
        times.append(when if when is not None else first_time(raw, *OBSERVATION_TIMES[1:]))
    return times


def _codings(concept: Any) -> Iterable[tuple[str | None, str | None, str | None]]:
    if isinstance(concept, Mapping):
        for coding in listed(concept.get("coding")):
            if isinstance(coding, Mapping):
                yield coding.get("system"), coding.get("code"), coding.get("display")


def answer_class(answers: Answers, value: Any) -> str | None:
    """yes / no / normal / unknown for a valueCodeableConcept or a valueString; None otherwise."""
    if isinstance(value, str):
        return answers.free_text_class(value)
    if not isinstance(value, Mapping):
        return None
    for system, code, display in _codings(value):
        found = answers.answer_class(system if isinstance(system, str) else None,
                                     code if isinstance(code, str) else None,
                                     display if isinstance(display, str) else None)
        if found:
            return found
    text = value.get("text")
    return answers.answer_class(None, None, text) if isinstance(text, str) else None


def _interpretation(answers: Answers, raw: Mapping[str, Any]) -> str | None:
    items = raw.get("interpretation")
    for item in items if isinstance(items, list) else []:
        for system, code, display in _codings(item):
            found = answers.interpretation_class(system, code, display)
            if found:
                return found
        if isinstance(item, Mapping) and isinstance(item.get("text"), str):
            found = answers.interpretation_class(None, None, item["text"])
            if found:
                return found
    return None


class _Part:
    """One question-and-answer of an Observation: the resource itself or one of its components."""

    def __init__(self, raw: Mapping[str, Any], parent: Mapping[str, Any]) -> None:
        self.raw = raw
        self.parent = parent

    def value(self) -> tuple[str | None, Any]:
        for key in ("valueQuantity", "valueCodeableConcept", "valueBoolean", "valueString", "valueInteger"):
            if key in self.raw:
                return key, self.raw[key]
        return None, None


class ObservationReader:
    """Reads one Observation into facts (see the module docstring)."""

    def __init__(self, reading: Reading) -> None:
        self._reading = reading
        self._answers = reading.knowledge.answers
        self._units = reading.knowledge.units

    def read(self, raw: dict[str, Any], when: datetime | None) -> list[Fact]:
        """The Observation's facts; `when`: its time (observation_time, which the caller sorted by)."""
        if excluded_result(raw):
            return []
        reference = reference_of(raw)
        body_site = raw.get("bodySite")
        side = None if body_site is None else body_site_side(body_site, self._reading.knowledge.language.sides)
        facts = self._part(_Part(raw, raw), reference, when, side, None)
        for component in listed(raw.get("component")):
            if isinstance(component, Mapping):
                facts += self._part(_Part(component, raw), reference, when, side, "component")
        if not facts:
            return []
        statements_seen = [Statement(fact.concepts, matched=fact.matched) for fact in facts]
        if not self._reading.valid(raw, statements_seen):
            return []
        return facts

    def _part(self, part: _Part, reference: str, when: datetime | None, side: str | None,
              source: str | None) -> list[Fact]:
        reading = self._reading
        question = reading.concept(part.raw.get("code"), reference)
        key, value = part.value()
        if not question and key not in ANSWERS_READ:  # nothing asked that a rule knows, no answer to read
            return []
        label = label_of(part.raw.get("code"), "Observation")
        common = {"kind": "Observation", "reference": reference, "label": label, "when": when,
                  "status": status_of(part.parent), "side": side}
        if any(NARRATIVE in s.concepts for s in question):
            return self._narrative(value, reference, common)
        measured = [s for s in question if any(self._units.measures(c) for c in s.concepts)]
        findings = [s for s in question if s not in measured and NARRATIVE not in s.concepts]
        facts: list[Fact] = []
        if measured:
            facts += self._measurements(part, measured, key, value, common, source)
        if findings:
            facts += self._answers_to(part, findings, key, value, common, source)
        if key in ANSWERS_READ and answer_class(self._answers, value) is None:
            said = (reading.concept(value, reference) if key == "valueCodeableConcept"
                    else reading.text(value, reference))
            facts += facts_from(said, **common, source="answer")
        return facts

    def _narrative(self, value: Any, reference: str, common: dict[str, Any]) -> list[Fact]:
        """A chief complaint or reason-for-visit Observation: the value is the patient's complaint."""
        if isinstance(value, str):
            said = self._reading.text(value, reference)
        else:
            said = self._reading.concept(value, reference)
        return facts_from(said, **{**common, "source": "triage"})

    def _measurements(self, part: _Part, measured: list[Statement], key: str | None, value: Any,
                      common: dict[str, Any], source: str | None) -> list[Fact]:
        facts: list[Fact] = []
        codes = tuple(c for _, c, _ in _codings(part.raw.get("code")) if isinstance(c, str))
        raw_quantity = value if key == "valueQuantity" else {"value": value} if key == "valueInteger" else None
        flag = _interpretation(self._answers, part.raw)
        for statement in measured:
            quantity = None
            if isinstance(raw_quantity, Mapping):
                quantity = next((q for c in statement.concepts
                                 if (q := self._units.normalise(c, raw_quantity, codes)) is not None), None)
            facts += facts_from([statement], **common, source=source or "code", quantity=quantity)
            if quantity is None and flag:
                for concept in statement.concepts:
                    flagged = self._answers.flagged.get(concept, {}).get(flag)
                    if flagged:
                        facts += facts_from([Statement(frozenset({flagged}), matched=statement.matched)],
                                            **{**common, "label": f"{common['label']} (flagged {flag})"},
                                            source=source or "answer")
        return facts

    def _answers_to(self, part: _Part, findings: list[Statement], key: str | None, value: Any,
                    common: dict[str, Any], source: str | None) -> list[Fact]:
        """Finding questions with the answer applied; dataAbsentReason means not recorded."""
        if "dataAbsentReason" in part.raw and key is None:
            present: bool | None = None
        elif key == "valueBoolean":
            present = value if isinstance(value, bool) else None
        elif key == "valueInteger":
            present = value > 0 if isinstance(value, int) and not isinstance(value, bool) else None
        elif key in {"valueCodeableConcept", "valueString"}:
            found = answer_class(self._answers, value)
            present = _PRESENT[found] if found else True  # another answer ("Mild") still records it
        elif key == "valueQuantity":
            present = True
        else:
            flag = _interpretation(self._answers, part.raw)
            present = flag not in {"negative", "normal"}
        statements = []
        for statement in findings:
            if present is None:
                statements.append(replace(statement, polarity="direct"))
            else:
                said = present if statement.asserted else not present
                statements.append(replace(statement, asserted=said if statement.polarity == "direct" else not said,
                                          polarity="direct"))
        facts = facts_from(statements, **common, source=source or "answer")
        if present is None:
            facts = [replace(f, present=None) for f in facts]
        return facts
