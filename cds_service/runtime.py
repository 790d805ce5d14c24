"""What one worker loads once and shares between requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auth import JwtVerifier, create_verifier
from .companion import Companion
from .config import Settings
from .evaluation import Evaluator, load_catalog
from .feedback_store import FeedbackStore
from .json_depth import nested_deeper_than
from .knowledge import Knowledge
from .recognition import BudgetLimits
from .render import CardSource

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


def budget_limits(settings: Settings) -> BudgetLimits:
    """The per-request evaluation budget from the settings."""
    return BudgetLimits(max_chars=settings.text_max_chars, max_texts=settings.text_max_count,
                        deadline_seconds=settings.evaluation_deadline_ms / 1000, max_notes=settings.notes_max)


@dataclass
class Runtime:
    """Settings, knowledge, evaluator, feedback store and JWT verifier of one worker."""

    settings: Settings
    knowledge: Knowledge
    evaluator: Evaluator
    store: FeedbackStore
    verifier: JwtVerifier | None
    openapi: bytes
    companion: Companion | None = None

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        """Load everything; KnowledgeError or TrustConfigError stop start-up with a clear message."""
        knowledge = load_catalog(settings.cards_dir)
        verifier = None
        if settings.auth == "required":
            verifier = create_verifier(
                settings.trusted_issuers,
                allow_http_jwks=not settings.production,
                leeway=settings.jwt_leeway_seconds,
                max_lifetime=settings.jwt_max_lifetime_seconds,
            )
        source = CardSource(settings.source_label, settings.source_url or None)
        return cls(
            settings=settings,
            knowledge=knowledge,
            evaluator=Evaluator(knowledge, source, settings.max_json_depth, budget_limits(settings)),
            store=FeedbackStore(settings.database_url),
            verifier=verifier,
            openapi=OPENAPI_PATH.read_bytes(),
            companion=Companion.load(settings),
        )

    def too_deep(self, body: Any) -> bool:
        """True when the request envelope (everything but the prefetch resources) nests deeper than
        the configured limit. Prefetch resources are not walked here: orjson refuses more than 1,024
        levels anywhere, and the record builder checks each resource it reads before validating it."""
        limit = self.settings.max_json_depth
        if not isinstance(body, dict):
            return nested_deeper_than(body, limit)
        envelope = {key: value for key, value in body.items() if key != "prefetch"}
        return nested_deeper_than(envelope, limit)

    def warm_up(self) -> None:
        """Build fhir.resources model schemas and caches now, not on the first request."""
        from .warmup import warm_up

        warm_up(self.evaluator)
