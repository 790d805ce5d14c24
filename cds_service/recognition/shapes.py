"""A quick check that what is read of a resource is valid FHIR, built from the fhir.resources models.

Validating a resource with its fhir.resources model costs some 70 µs (Python validators on every element);
a typical call validates eight of them, a real record hundreds. This check walks the same elements with
the same model's metadata (each element's type, cardinality, required elements, choice groups, from
`model_fields`), but accepts only the plainest shapes, each surely valid: codes of printable ASCII,
calendar dates in the forms FHIR gives, and no extension, identifier, contained resource, null,
empty list or element the model does not define. Whatever it does not vouch for goes to the model,
which decides as it always did: the check may only say "valid", never "invalid", so the outcome for
every resource is the model's (tests/recognition/test_shapes.py compares both on real records and on
thousands of mutations of them).
"""

from __future__ import annotations

import calendar
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.backboneelement import BackboneElement

Check = Callable[[Any], bool]

_CODE = re.compile(r"[!-~]+(?: [!-~]+)*")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_URI = re.compile(r"[!-~]+")
_VISIBLE = re.compile(r"[!-~]")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
                     r"|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=")
_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
_INSTANT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,6})?"
                      r"(?:Z|[+-]([0-9]{2}):([0-9]{2}))")
INT32 = 2**31
SAFE_DECIMAL = 2**53
# Elements the check never vouches for (the model decides): they extend, identify or contain
REFUSED_ELEMENTS = frozenset({"extension", "modifierExtension", "contained", "identifier", "fhir_comments"})


def _string(value: Any) -> bool:
    return type(value) is str and _VISIBLE.search(value) is not None


def _pattern(pattern: re.Pattern[str]) -> Check:
    return lambda value: type(value) is str and pattern.fullmatch(value) is not None


def _integer(low: int) -> Check:
    return lambda value: type(value) is int and low <= value < INT32


def _decimal(value: Any) -> bool:
    kind = type(value)  # NaN and infinities (a YAML test case, a lenient parser) are the model's to refuse
    return (kind is float and math.isfinite(value)) or (kind is int and -SAFE_DECIMAL < value < SAFE_DECIMAL)


def _day(year: str, month: str | None, day: str | None) -> bool:
    """A year 0001-9999, a month 01-12 and a day of that month."""
    if year == "0000":
        return False
    if month is None:
        return True
    if not "01" <= month <= "12":
        return False
    return day is None or "01" <= day <= "28" or 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]


def _date(value: Any) -> bool:
    if type(value) is not str:
        return False
    found = _DATE.fullmatch(value)
    return found is not None and _day(*found.groups())


def _instant(value: Any) -> bool:
    if type(value) is not str:
        return False
    found = _INSTANT.fullmatch(value)
    if found is None:
        return False
    year, month, day, hour, minute, second, zone_hour, zone_minute = found.groups()
    if not (_day(year, month, day) and hour <= "23" and minute <= "59" and second <= "59"):
        return False
    return zone_hour is None or (zone_hour <= "13" and zone_minute <= "59") or (zone_hour, zone_minute) == ("14", "00")


def _date_time(value: Any) -> bool:
    return _date(value) or _instant(value)


def _boolean(value: Any) -> bool:
    return type(value) is bool


def _never(value: Any) -> bool:
    return False


# fhir_core's primitive types (the metadata of `Annotated[...]` in a model field) → a check
PRIMITIVES: dict[str, Check] = {
    "String": _string,
    "Markdown": _string,
    "Code": _pattern(_CODE),
    "Id": _pattern(_ID),
    "Uri": _pattern(_URI),
    "Url": _pattern(_URI),
    "Canonical": _pattern(_URI),
    "Integer": _integer(-INT32),
    "UnsignedInt": _integer(0),
    "PositiveInt": _integer(1),
    "Decimal": _decimal,
    "Date": _date,
    "DateTime": _date_time,
    "Instant": _instant,
    "Base64Binary": _pattern(_BASE64),
}
# Complex types whose every element the check follows (others, e.g. Identifier, Extension, Ratio: the model)
COMPLEX = frozenset({"CodeableConcept", "Coding", "Quantity", "Reference", "Period", "Attachment"})


class _Element(NamedTuple):
    many: bool
    check: Check


class _Shape:
    """The check of one model (a resource, a data type or a backbone element)."""

    def __init__(self, model: type[Any], kind: str | None) -> None:
        self.kind = kind  # the resourceType a resource must name; None for an element
        self.elements: dict[str, _Element] = {}
        instance = model.model_construct()
        self.required = frozenset(
            [model.model_fields[name].alias or name for name, _ in instance.get_required_fields()]
            + [field.alias or name for name, field in model.model_fields.items() if field.is_required()])
        self.choices = tuple(tuple(model.model_fields[n].alias or n for n in names)
                             for names in instance.get_one_of_many_fields().values())
        self.required_choices = tuple(
            group for group, names in zip(self.choices, instance.get_one_of_many_fields().values(), strict=True)
            if (model.model_fields[names[0]].json_schema_extra or {}).get("one_of_many_required") is True)

    def __call__(self, value: Any) -> bool:
        if type(value) is not dict or not value:
            return False
        elements = self.elements
        for key, item in value.items():
            element = elements.get(key)
            if element is None:
                if key == "resourceType" and self.kind is not None and item == self.kind:
                    continue
                return False
            many, check = element
            if many:
                if type(item) is not list or not item:
                    return False
                for one in item:
                    if not check(one):
                        return False
            elif not check(item):
                return False
        if self.kind is not None and value.get("resourceType") != self.kind:
            return False
        if not value.keys() >= self.required:
            return False
        has = value.__contains__
        for group in self.choices:
            if sum(map(has, group)) > 1:
                return False
        return all(any(map(has, group)) for group in self.required_choices)


def _unwrapped(annotation: Any) -> tuple[bool, Any]:
    """(a list?, the element type) of a model field's annotation: Optional, List and Annotated removed."""
    many = False
    while True:
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return many, None
            annotation = args[0]
        elif origin in (list, typing.List):  # noqa: UP006 - the models use typing.List
            many = True
            annotation = typing.get_args(annotation)[0]
        else:
            return many, annotation


class ShapeChecks:
    """Quick checks of the read elements of each resource type (built once per worker)."""

    def __init__(self, read_elements: Mapping[str, tuple[str, ...]]) -> None:
        self._shapes: dict[str, _Shape] = {}
        self.resources = {kind: self._shape(kind, frozenset(names) | {"resourceType"}, resource=True)
                          for kind, names in read_elements.items()}
        self.max_depth = max(self._depth(shape, ()) for shape in self.resources.values())

    def valid(self, kind: str, projection: dict[str, Any]) -> bool:
        """True only when the projection is surely valid FHIR R4B (False: let the model decide)."""
        shape = self.resources.get(kind)
        return shape is not None and shape(projection)

    def _shape(self, name: str, only: frozenset[str] | None = None, resource: bool = False) -> _Shape:
        key = name if only is None else f"{name}:{','.join(sorted(only))}"
        found = self._shapes.get(key)
        if found is not None:
            return found
        model = get_fhir_model_class(name)
        shape = _Shape(model, name if resource else None)
        self._shapes[key] = shape
        for field_name, field in model.model_fields.items():
            alias = field.alias or field_name
            if alias.startswith("_") or field_name.endswith("__ext") or alias in REFUSED_ELEMENTS:
                continue
            if only is not None and alias not in only:
                continue
            many, target = _unwrapped(field.annotation)
            check = self._check_of(target)
            if check is not None:
                shape.elements[alias] = _Element(many, check)
        return shape

    def _check_of(self, target: Any) -> Check | None:
        if target is bool:
            return _boolean
        if typing.get_origin(target) is typing.Annotated:
            for meta in typing.get_args(target)[1:]:
                check = PRIMITIVES.get(type(meta).__name__)
                if check is not None:
                    return check
            return None
        name = getattr(target, "__name__", "")
        if not name.endswith("Type"):
            return None
        name = name.removesuffix("Type")
        if name in COMPLEX or issubclass(get_fhir_model_class(name), BackboneElement):
            return self._shape(name)
        return None

    def _depth(self, shape: _Shape, seen: tuple[int, ...]) -> int:
        """JSON levels (objects and lists, counted as json_depth counts them) of the deepest value the
        check accepts for `shape`, itself included."""
        if id(shape) in seen:
            raise ValueError("recursive shapes: the depth of what the check accepts would be unbounded")
        below = 0
        for element in shape.elements.values():
            inner = self._depth(element.check, (*seen, id(shape))) if isinstance(element.check, _Shape) else 0
            below = max(below, inner + (1 if element.many else 0))
        return 1 + below
