"""The SMART companion page: the whole picture behind a critical or DVT card (the Wells calculator with
the undocumented items, PE Wells and PERC, the evidence with its resources, the pathways, thresholds and
knowledge version), served by the service itself.

    companion = Companion.load(settings)          # None of it when links are off
    link = companion.new_link(base_url)           # an opaque, signed, short-lived reference
    ... render cards with `link`; store `companion.snapshot(link, ...)` with the cards shown
    GET /companion/?ref=<reference>               # the page (static HTML, CSS, JS)
    GET /companion/api/evaluation?ref=<reference> # its data, 404 once expired
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..config import Settings
from ..feedback_store import Snapshot
from .perc import Perc, load_perc
from .references import ReferenceSigner, load_key

PAGE_PATH = "/companion/"


@dataclass(frozen=True)
class PendingLink:
    """The link one hook call puts on its cards, and the snapshot id it names."""

    snapshot_id: str
    token: str
    url: str
    type: str


class Companion:
    """Signs links to the companion page and checks them; how long snapshots live."""

    def __init__(self, signer: ReferenceSigner, link_type: str, ttl_seconds: float, perc: Perc) -> None:
        self.signer = signer
        self.link_type = link_type
        self.ttl_seconds = ttl_seconds
        self.perc = perc

    @classmethod
    def load(cls, settings: Settings) -> Companion | None:
        key = load_key(settings)
        if key is None:
            return None
        ttl = settings.companion_ttl_hours * 3600
        return cls(ReferenceSigner(key, ttl), settings.companion_link, ttl, load_perc(settings.cards_dir / "perc.yaml"))

    def new_link(self, base_url: str) -> PendingLink:
        """A fresh reference and the page URL carrying it (the EHR adds `launch` and `iss` to a smart link)."""
        reference = self.signer.new()
        url = f"{base_url.rstrip('/')}{PAGE_PATH}?ref={quote(reference.token, safe='')}"
        return PendingLink(reference.snapshot_id, reference.token, url, self.link_type)

    def snapshot(self, link: PendingLink, body: dict[str, Any]) -> Snapshot:
        return Snapshot(link.snapshot_id, body, self.ttl_seconds)

    def snapshot_id(self, token: str) -> str | None:
        return self.signer.snapshot_id(token)
