"""FHIR date, dateTime and instant strings to timezone-aware datetimes (UTC when unspecified)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any


def parse_fhir_datetime(value: Any) -> datetime | None:
    """Parse YYYY, YYYY-MM, YYYY-MM-DD or a full dateTime; None when absent or invalid."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def first_time(resource: Mapping[str, Any], *fields: str) -> datetime | None:
    """The first parseable time among `fields`; a Period field gives its start."""
    for name in fields:
        value = resource.get(name)
        if isinstance(value, Mapping):
            value = value.get("start") or value.get("end")
        parsed = parse_fhir_datetime(value)
        if parsed is not None:
            return parsed
    return None


def age_in_years(birth: date | None, today: date) -> int | None:
    """Completed years between birth and today."""
    if birth is None:
        return None
    years = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    return years if years >= 0 else None
