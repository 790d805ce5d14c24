"""The plain card classes the service sends (card_model) write exactly what the spec's strict model
(wire.CdsResponse) accepts and would have written: same fields, same order, nothing empty."""

from __future__ import annotations

import json

import pytest

from cds_service.card_model import (
    Action,
    Card,
    Link,
    OutCoding,
    OverrideReasonOut,
    Source,
    Suggestion,
    response_body,
)
from cds_service.wire import CdsResponse

TOPIC = OutCoding(system="https://example.org/topic", code="dvt-likely", display="DVT likely")
FULL = Card(
    uuid="c1", summary="DVT likely (Wells 3): proximal leg vein ultrasound within 4 h",
    indicator="critical", detail="- Calf swelling 3.5 cm — today",
    source=Source(label="Posterior knee pain CDS", url="https://example.org/cds", topic=TOPIC),
    suggestions=(Suggestion(label="Order leg vein ultrasound", uuid="s1", isRecommended=True, actions=(
        Action(type="create", description="Create a draft order: ultrasound",
               resource={"resourceType": "ServiceRequest", "status": "draft"}),)),
                 Suggestion(label="No action", uuid="s2", isRecommended=False)),
    selectionBehavior="at-most-one",
    overrideReasons=(OverrideReasonOut(code="already-done", system="https://example.org/o", display="Done"),),
    links=(Link(label="Companion page", url="https://example.org/companion", type="smart", appContext="ref"),
           Link(label="NICE NG158", url="https://www.nice.org.uk/guidance/ng158")),
)
BARE = Card(uuid="c2", summary="Self-care advice", indicator="info", source=Source(label="Posterior knee pain CDS"))


@pytest.mark.parametrize("card", [FULL, BARE], ids=["every field", "required fields only"])
def test_a_card_writes_what_the_strict_spec_model_writes(card: Card) -> None:
    body = response_body([card])
    strict = CdsResponse.model_validate(body)  # extra fields, empty arrays, a bad selection would fail here
    assert json.dumps(body) == json.dumps(strict.to_json())  # same keys in the same order


def test_empty_collections_and_unset_fields_are_left_out() -> None:
    written = BARE.to_json()
    assert list(written) == ["uuid", "summary", "indicator", "source"]
    assert written["source"] == {"label": "Posterior knee pain CDS"}
    suggestion = FULL.suggestions[1].to_json()
    assert suggestion == {"label": "No action", "uuid": "s2", "isRecommended": False}


def test_a_card_is_immutable() -> None:
    with pytest.raises(AttributeError):
        FULL.summary = "changed"  # type: ignore[misc]
