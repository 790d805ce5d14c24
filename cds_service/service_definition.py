"""The CDS service declaration (cards/service.yaml) and the discovery document generated from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .knowledge_files import KnowledgeError, read_yaml, require_keys

# CDS Hooks 2.0 §Prefetch tokens: context tokens are first-level fields; user tokens are allowed too.
PATIENT_VIEW_CONTEXT_FIELDS = frozenset({"userId", "patientId", "encounterId"})
USER_TOKENS = frozenset(
    {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}
)
TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")


@dataclass(frozen=True)
class ServiceDefinition:
    """One CDS service: what discovery announces and what the prefetch resolver needs."""

    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str | None
    prefetch: dict[str, str]

    def discovery_entry(self) -> dict[str, Any]:
        """The service as it appears in `GET /cds-services`."""
        entry: dict[str, Any] = {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(self.prefetch),
        }
        if self.usage_requirements:
            entry["usageRequirements"] = self.usage_requirements
        return entry


def _check_template(key: str, template: str, where: Path) -> None:
    if template.startswith(("/", "http:", "https:")):
        raise KnowledgeError(where, f"prefetch {key!r} must be a relative FHIR URL: {template!r}")
    for token in TOKEN.findall(template):
        if token.startswith("context."):
            field = token.removeprefix("context.")
            if field not in PATIENT_VIEW_CONTEXT_FIELDS:
                raise KnowledgeError(where, f"prefetch {key!r}: unknown context field {token!r}")
        elif token not in USER_TOKENS:
            raise KnowledgeError(where, f"prefetch {key!r}: token {{{{{token}}}}} is not allowed")


def load_service_definition(cards_dir: Path) -> ServiceDefinition:
    """Read and check cards/service.yaml."""
    path = cards_dir / "service.yaml"
    document = read_yaml(path)
    service = document.get("service")
    if not isinstance(service, dict):
        raise KnowledgeError(path, "missing the 'service' mapping")
    require_keys(path, service, ("id", "hook", "title", "description", "prefetch"))
    prefetch = service["prefetch"]
    if not isinstance(prefetch, dict) or not prefetch:
        raise KnowledgeError(path, "'prefetch' must map keys to query templates")
    for key, template in prefetch.items():
        if not isinstance(template, str):
            raise KnowledgeError(path, f"prefetch {key!r} must be a string")
        _check_template(key, template, path)
    return ServiceDefinition(
        id=str(service["id"]),
        hook=str(service["hook"]),
        title=str(service["title"]),
        description=str(service["description"]),
        usage_requirements=service.get("usageRequirements"),
        prefetch={str(k): str(v) for k, v in prefetch.items()},
    )


def fill_template(template: str, context: dict[str, Any]) -> str | None:
    """Replace `{{context.x}}` tokens; None when a token has no value in this context."""
    missing = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal missing
        token = match.group(1)
        value = context.get(token.removeprefix("context.")) if token.startswith("context.") else None
        if value is None or isinstance(value, dict | list):
            missing = True
            return ""
        return str(value)

    filled = TOKEN.sub(substitute, template)
    return None if missing else filled
