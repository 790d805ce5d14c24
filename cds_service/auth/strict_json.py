"""Parse JSON strictly: NaN and Infinity (which Python's json accepts) are refused."""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes) -> Any:
    """`json.loads` that raises ValueError on NaN, Infinity and -Infinity."""
    return json.loads(data, parse_constant=_reject_constant)


def _reject_constant(name: str) -> None:
    """Refuse a non-standard JSON constant (an `exp` of Infinity would never expire)."""
    raise ValueError(f"invalid JSON constant {name}")
