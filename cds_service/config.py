"""Settings: defaults, then `CDS_*` environment variables, then an explicit mapping (tests)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PACKAGE_ROOT = Path(__file__).resolve().parent
DEFAULT_CARDS_DIR = PACKAGE_ROOT.parent / "cards"
DASHBOARD_TOKEN_MIN_CHARS = 32


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def _as_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def _as_list(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(value)
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Every setting of the service; the README's configuration table mirrors this class."""

    cards_dir: Path = DEFAULT_CARDS_DIR
    database_url: str = "sqlite:///var/feedback.sqlite3"
    auth: str = "off"
    production: bool = False
    allow_insecure_dev: bool = False
    trusted_issuers: str = ""
    public_base_url: str = ""
    fhir_server_allowlist: tuple[str, ...] = ()
    fhir_connect_timeout: float = 2.0
    fhir_read_timeout: float = 4.0
    fhir_deadline: float = 8.0
    fhir_retries: int = 1
    fhir_max_pages: int = 10
    fhir_max_workers: int = 8
    fhir_max_response_bytes: int = 64 * 1024 * 1024
    note_max_bytes: int = 2 * 1024 * 1024
    notes_max: int = 20
    text_max_chars: int = 120_000
    text_max_count: int = 400
    evaluation_deadline_ms: int = 350
    cors_origins: tuple[str, ...] = ("*",)
    max_body_bytes: int = 16 * 1024 * 1024
    max_json_depth: int = 64
    jwt_leeway_seconds: int = 60
    jwt_max_lifetime_seconds: int = 300
    companion_link: str = "smart"
    companion_ttl_hours: float = 24.0
    companion_key_file: str = ""
    source_label: str = "Posterior knee pain CDS"
    source_url: str = ""
    log_level: str = "INFO"
    # --- the store (feedback, cards shown, token ids): bounded waits so cards never wait on it ---
    database_password_file: str = ""
    database_connect_timeout: float = 2.0
    database_timeout: float = 2.0
    database_pool_size: int = 5
    database_pool_timeout: float = 1.0
    database_migrate: str = "auto"
    cards_shown_queue: int = 10_000
    replay_store: str = "database"
    replay_timeout: float = 0.5
    # --- feedback analytics: the dashboard (off by default), the patient hash, retention ---
    dashboard: bool = False
    dashboard_token: str = field(default="", repr=False)
    dashboard_token_file: str = ""
    dashboard_trust_proxy: bool = False
    dashboard_query_timeout: float = 10.0
    patient_hash_key_file: str = ""
    retention_days: int = 90
    comment_retention_days: int = 90
    # --- operations ---
    management_port: int = 0
    build_commit: str = "unknown"
    otel_enabled: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> Settings:
        """Reject combinations a hospital must not run with; return self for chaining."""
        if self.auth not in {"off", "required"}:
            raise ConfigError(f"CDS_AUTH must be 'off' or 'required', not {self.auth!r}")
        if self.production and self.auth == "off" and not self.allow_insecure_dev:
            raise ConfigError(
                "CDS_AUTH=off is refused in production mode (CDS_PRODUCTION=true); "
                "set CDS_AUTH=required, or CDS_ALLOW_INSECURE_DEV=true for a local trial only"
            )
        if self.auth == "required" and not self.trusted_issuers:
            raise ConfigError("CDS_AUTH=required needs CDS_TRUSTED_ISSUERS (a trust file)")
        for prefix in self.fhir_server_allowlist:
            if not prefix.startswith(("https://", "http://")):
                raise ConfigError(f"CDS_FHIR_SERVER_ALLOWLIST entry is not a URL: {prefix!r}")
        self._validate_public_base_url()
        if self.companion_link not in {"smart", "absolute", "off"}:
            raise ConfigError(f"CDS_COMPANION_LINK must be smart, absolute or off, not {self.companion_link!r}")
        if self.companion_ttl_hours <= 0:
            raise ConfigError("CDS_COMPANION_TTL_HOURS must be positive")
        if self.jwt_max_lifetime_seconds <= 0:
            raise ConfigError("CDS_JWT_MAX_LIFETIME_SECONDS must be positive")
        if self.notes_max < 0 or self.note_max_bytes <= 0:
            raise ConfigError("CDS_NOTES_MAX must not be negative and CDS_NOTE_MAX_BYTES must be positive")
        if min(self.text_max_chars, self.text_max_count, self.evaluation_deadline_ms) <= 0:
            raise ConfigError("CDS_TEXT_MAX_CHARS, CDS_TEXT_MAX_COUNT and CDS_EVALUATION_DEADLINE_MS must be positive")
        if self.fhir_connect_timeout <= 0 or self.fhir_read_timeout <= 0:
            raise ConfigError("FHIR timeouts must be positive")
        if self.database_migrate not in {"auto", "off"}:
            raise ConfigError(f"CDS_DATABASE_MIGRATE must be 'auto' or 'off', not {self.database_migrate!r}")
        if min(self.database_connect_timeout, self.database_timeout, self.database_pool_timeout,
               self.replay_timeout) <= 0:
            raise ConfigError("database and replay timeouts must be positive")
        if self.database_pool_size < 1 or self.cards_shown_queue < 1:
            raise ConfigError("CDS_DATABASE_POOL_SIZE and CDS_CARDS_SHOWN_QUEUE must be at least 1")
        if not (self.replay_store in {"memory", "database"} or self.replay_store.startswith(("redis://", "rediss://"))):
            raise ConfigError("CDS_REPLAY_STORE must be 'memory', 'database' or a redis:// or rediss:// URL")
        self._validate_dashboard()
        if self.retention_days < 0 or self.comment_retention_days < 0:
            raise ConfigError("CDS_RETENTION_DAYS and CDS_COMMENT_RETENTION_DAYS must not be negative (0: keep)")
        if not 0 <= self.management_port <= 65535:
            raise ConfigError(f"CDS_MANAGEMENT_PORT is not a port: {self.management_port}")
        if not self.cards_dir.is_dir():
            raise ConfigError(f"CDS_CARDS_DIR is not a directory: {self.cards_dir}")
        return self


    def _validate_dashboard(self) -> None:
        """The dashboard shows clinical-safety data: in production it needs a token or an authenticating
        proxy in front (CDS_DASHBOARD_TRUST_PROXY=on), whether or not it is on yet."""
        if self.dashboard_token and self.dashboard_token_file:
            raise ConfigError("set CDS_DASHBOARD_TOKEN or CDS_DASHBOARD_TOKEN_FILE, not both")
        if self.dashboard_token and len(self.dashboard_token) < DASHBOARD_TOKEN_MIN_CHARS:
            raise ConfigError(f"CDS_DASHBOARD_TOKEN must be at least {DASHBOARD_TOKEN_MIN_CHARS} characters "
                              "(e.g. `openssl rand -base64 33`)")
        if self.dashboard_query_timeout <= 0:
            raise ConfigError("CDS_DASHBOARD_QUERY_TIMEOUT must be positive")
        protected = self.dashboard_token or self.dashboard_token_file or self.dashboard_trust_proxy
        if self.dashboard and self.production and not self.allow_insecure_dev and not protected:
            raise ConfigError(
                "CDS_DASHBOARD=on in production mode needs CDS_DASHBOARD_TOKEN (or CDS_DASHBOARD_TOKEN_FILE), or "
                "CDS_DASHBOARD_TRUST_PROXY=on behind an authenticating reverse proxy (see README, Feedback analytics)"
            )

    def _validate_public_base_url(self) -> None:
        """CDS_PUBLIC_BASE_URL is the JWT audience's base: required (and https) in production, so that
        the audience never follows the request's Host or X-Forwarded-* headers."""
        url = self.public_base_url.strip()
        if not url:
            if self.production and not self.allow_insecure_dev:
                raise ConfigError(
                    "CDS_PUBLIC_BASE_URL is required in production mode (CDS_PRODUCTION=true): set it to the "
                    "https base URL the EHR calls, e.g. https://cds.hospital.example.org; a JWT's aud must be "
                    "that URL + the path called"
                )
            return
        try:
            parts = urlsplit(url)
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            parts, port_ok = None, False
        if (parts is None or not port_ok or parts.scheme not in {"http", "https"} or not parts.hostname
                or parts.query or parts.fragment or "@" in parts.netloc):
            raise ConfigError(f"CDS_PUBLIC_BASE_URL must be an http(s) base URL without query, fragment or "
                              f"credentials, not {url!r}")
        if self.production and not self.allow_insecure_dev and parts.scheme != "https":
            raise ConfigError(f"CDS_PUBLIC_BASE_URL must be https in production mode, not {url!r}")


_CONVERTERS: dict[str, Any] = {
    "cards_dir": Path,
    "production": _as_bool,
    "allow_insecure_dev": _as_bool,
    "fhir_server_allowlist": _as_list,
    "cors_origins": _as_list,
    "fhir_connect_timeout": float,
    "fhir_read_timeout": float,
    "fhir_deadline": float,
    "fhir_retries": int,
    "fhir_max_pages": int,
    "fhir_max_workers": int,
    "fhir_max_response_bytes": int,
    "note_max_bytes": int,
    "notes_max": int,
    "text_max_chars": int,
    "text_max_count": int,
    "evaluation_deadline_ms": int,
    "max_body_bytes": int,
    "max_json_depth": int,
    "jwt_leeway_seconds": int,
    "jwt_max_lifetime_seconds": int,
    "companion_ttl_hours": float,
    "database_connect_timeout": float,
    "database_timeout": float,
    "database_pool_size": int,
    "database_pool_timeout": float,
    "cards_shown_queue": int,
    "replay_timeout": float,
    "management_port": int,
    "otel_enabled": _as_bool,
    "dashboard": _as_bool,
    "dashboard_trust_proxy": _as_bool,
    "dashboard_query_timeout": float,
    "retention_days": int,
    "comment_retention_days": int,
}


def _convert(name: str, value: Any) -> Any:
    converter = _CONVERTERS.get(name)
    if converter is None or not isinstance(value, str):
        if name in {"fhir_server_allowlist", "cors_origins"} and isinstance(value, list):
            return tuple(value)
        if name == "cards_dir" and not isinstance(value, Path):
            return Path(value)
        return value
    try:
        return converter(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"CDS_{name.upper()}: {exc}") from exc


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from `CDS_<NAME>` variables, then `overrides` (keys are field names)."""
    env = os.environ if environ is None else environ
    names = {f.name for f in fields(Settings)} - {"extra"}
    values: dict[str, Any] = {}
    for name in names:
        raw = env.get(f"CDS_{name.upper()}")
        if raw is not None:
            values[name] = _convert(name, raw)
    extra: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if key in names:
            values[key] = _convert(key, value)
        else:
            extra[key] = value
    return replace(Settings(), **values, extra=extra).validate()
