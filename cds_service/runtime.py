"""What one worker loads once and shares between requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auth import JwtVerifier, create_verifier
from .config import Settings
from .evaluation import Evaluator
from .feedback_store import FeedbackStore
from .knowledge import Knowledge, load_knowledge
from .render import CardSource

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@dataclass
class Runtime:
    """Settings, knowledge, evaluator, feedback store and JWT verifier of one worker."""

    settings: Settings
    knowledge: Knowledge
    evaluator: Evaluator
    store: FeedbackStore
    verifier: JwtVerifier | None
    openapi: bytes

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        """Load everything; KnowledgeError or TrustConfigError stop start-up with a clear message."""
        knowledge = load_knowledge(settings.cards_dir)
        verifier = None
        if settings.auth == "required":
            verifier = create_verifier(
                settings.trusted_issuers,
                allow_http_jwks=not settings.production,
                leeway=settings.jwt_leeway_seconds,
            )
        source = CardSource(settings.source_label, settings.source_url or None)
        return cls(
            settings=settings,
            knowledge=knowledge,
            evaluator=Evaluator(knowledge, source),
            store=FeedbackStore(settings.database_url),
            verifier=verifier,
            openapi=OPENAPI_PATH.read_bytes(),
        )

    def too_deep(self, body: Any) -> bool:
        """True when JSON containers nest deeper than the configured limit."""
        limit = self.settings.max_json_depth
        stack: list[tuple[Any, int]] = [(body, 1)]
        while stack:
            value, depth = stack.pop()
            if depth > limit:
                return True
            if isinstance(value, dict):
                stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
            elif isinstance(value, list):
                stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
        return False

    def warm_up(self) -> None:
        """Build fhir.resources model schemas and caches now, not on the first request."""
        from .warmup import warm_up

        warm_up(self.evaluator)
