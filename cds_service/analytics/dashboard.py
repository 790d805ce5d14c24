"""The dashboard's settings as one worker holds them: on or off, its token, whether a proxy in front
authenticates people, the query budget; and the window a request asks for (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from ..config import DASHBOARD_TOKEN_MIN_CHARS, ConfigError, Settings
from .config import AnalyticsConfig
from .measures import PERIODS, Window

DEFAULT_DAYS = 30
MAX_DAYS = 366


class WindowError(ValueError):
    """The query's since / until / period cannot be used (answered 400)."""


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard's blueprint needs: the token (None: none configured), the proxy setting."""

    config: AnalyticsConfig
    token: bytes | None
    trust_proxy: bool
    query_timeout: float

    @classmethod
    def load(cls, settings: Settings, config: AnalyticsConfig) -> Dashboard | None:
        """None when CDS_DASHBOARD is off (every /dashboard path then answers 404)."""
        if not settings.dashboard:
            return None
        token = settings.dashboard_token
        if settings.dashboard_token_file:
            path = Path(settings.dashboard_token_file)
            try:
                token = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"CDS_DASHBOARD_TOKEN_FILE {path}: {exc.strerror}") from None
            if len(token) < DASHBOARD_TOKEN_MIN_CHARS:
                raise ConfigError(f"CDS_DASHBOARD_TOKEN_FILE {path}: the token must be at least "
                                  f"{DASHBOARD_TOKEN_MIN_CHARS} characters")
        return cls(config, token.encode() if token else None, settings.dashboard_trust_proxy,
                   settings.dashboard_query_timeout)


def _moment(value: str, name: str, end_of_day: bool) -> datetime:
    """An ISO date (a whole day: `until` then means the end of that day) or a date-time (UTC if no zone)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{name}: not an ISO date (2026-11-30) or date-time (2026-11-30T08:00:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def window_from_query(since: str | None, until: str | None, period: str | None, now: datetime) -> Window:
    """The window a request asks for: by default the last 30 days up to the end of today (UTC), by day."""
    end = (_moment(until, "until", end_of_day=True) if until
           else datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(), tzinfo=UTC))
    start = _moment(since, "since", end_of_day=False) if since else end - timedelta(days=DEFAULT_DAYS)
    chosen = period or "day"
    if chosen not in PERIODS:
        raise WindowError(f"period must be one of {', '.join(PERIODS)}")
    if end <= start:
        raise WindowError("until must be after since")
    if end - start > timedelta(days=MAX_DAYS):
        raise WindowError(f"the window is longer than {MAX_DAYS} days")
    return Window(start, end, chosen)
