"""Times in case files: absolute FHIR dates and dateTimes, or relative to the case's frozen `now`.

`-3d` is three days before `now`, `-2h` two hours before, `+30min` thirty minutes after; units are
`y` (calendar years), `mo` (calendar months), `w`, `d`, `h`, `min`, `s`, and they combine (`-1d12h`).
`now` is `now` itself. Anything else must be a FHIR date or dateTime (`2015-04-10`,
`2026-11-20T08:30:00+10:00`) and is passed on as written.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta

RELATIVE = re.compile(r"^([+-])\s*((?:\d+(?:\.\d+)?\s*(?:y|mo|w|d|h|min|s)\s*)+)$")
PART = re.compile(r"(\d+(?:\.\d+)?)\s*(y|mo|w|d|h|min|s)")
FHIR_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
FHIR_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "min": 60, "s": 1}


class TimeError(ValueError):
    """A time that is neither relative nor a FHIR date/dateTime."""


def parse_now(text: object) -> datetime:
    """The case's frozen `now`: a full dateTime with a time zone."""
    if not isinstance(text, str) or not FHIR_DATETIME.match(text.strip()):
        raise TimeError(f"`now` must be a date and time with a time zone, e.g. 2026-11-21T10:00:00Z "
                        f"(got {text!r})")
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise TimeError(f"`now` needs a time zone, e.g. 2026-11-21T10:00:00Z (got {text!r})")
    return value


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift(now: datetime, text: str) -> datetime:
    """`now` moved by a relative time such as `-3d` or `-1y6mo`."""
    found = RELATIVE.match(text.strip())
    if not found:
        raise TimeError(f"{text!r} is not a relative time like -3d, -2h or +30min")
    sign = -1 if found.group(1) == "-" else 1
    moment = now
    for number, unit in PART.findall(found.group(2)):
        amount = float(number)
        if unit in {"y", "mo"}:
            if amount != int(amount):
                raise TimeError(f"{text!r}: years and months must be whole numbers")
            moment = _add_months(moment, sign * int(amount) * (12 if unit == "y" else 1))
        else:
            moment += timedelta(seconds=sign * amount * SECONDS[unit])
    return moment


def is_relative(text: object) -> bool:
    return isinstance(text, str) and (text.strip() == "now" or bool(RELATIVE.match(text.strip())))


def fhir_time(now: datetime, value: object) -> str:
    """A FHIR dateTime (or date) string for a case time value."""
    if not isinstance(value, str):
        raise TimeError(f"a time must be text such as -3d or 2026-11-18 (got {value!r})")
    text = value.strip()
    if text == "now":
        return now.isoformat()
    if text[:1] in "+-":
        if re.match(r"^[+-]\s*\d+(\.\d+)?\s*m$", text):
            raise TimeError(f"{text!r}: write `min` for minutes or `mo` for months")
        return shift(now, text).isoformat()
    if FHIR_DATE.match(text) or FHIR_DATETIME.match(text):
        return text
    raise TimeError(f"{text!r} is neither a relative time (-3d, -2h, +30min, now) nor a FHIR date "
                    f"or dateTime (2015-04-10, 2026-11-20T08:30:00Z)")


def birth_date_for_age(now: datetime, age: int) -> str:
    """A birthDate that gives exactly `age` completed years at `now` (birthday a month ago)."""
    born = _add_months(now, -12 * age) - timedelta(days=30)
    return born.date().isoformat()
