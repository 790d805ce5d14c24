"""Reading raw JSON that has not been validated yet: an element may hold any JSON type."""

from __future__ import annotations

from typing import Any


def listed(value: Any) -> list[Any]:
    """The items of a JSON array; a malformed element (a number, a string, an object) has none, so the
    resource reaches validation and is named as unread instead of failing the call."""
    return value if isinstance(value, list) else []
