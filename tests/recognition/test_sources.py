"""Where complaints are written first: notes in their formats and by URL, the visit's reason, the right
patient. Through the evaluator and through the HTTP endpoint."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.evaluation import Evaluator
from cds_service.prefetch import FetchedAttachment
from cds_service.recognition import Recognizer
from tests.support import ehr
from tests.support import fhir as F

from .conftest import record_of

SERVICE_URL = "/cds-services/posterior-knee-pain"
NOTE = "58F, 3/52 after R TKR. R calf swollen and tender along the deep veins. No chest pain."


def topics_of(evaluator: Evaluator, resources: list[dict[str, Any]], **kwargs: Any) -> dict[str, str]:
    evaluation = evaluator.evaluate(resources, "p1", **kwargs)
    return {c.source.topic.code: c.indicator for c in evaluation.cards if c.source.topic}


def with_surgery(*resources: dict[str, Any]) -> list[dict[str, Any]]:
    return [F.patient(age=58), F.procedure(F.SNOMED, "609588000", "Total knee replacement", days=21), *resources]


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/plain", NOTE),
    ("text/plain; charset=ISO-8859-1", NOTE),
    ("text/html", ehr.html("Assessment", NOTE)),
    ("text/rtf", r"{\rtf1\ansi{\fonttbl\f0\fswiss Helvetica;}\f0\pard " + NOTE + r"\par}"),
])
def test_a_note_in_any_text_format_is_read(evaluator: Evaluator, content_type: str, body: str) -> None:
    """Surgery + tenderness + calf swelling of the right leg in the note: DVT likely."""
    found = topics_of(evaluator, with_surgery(ehr.note(body, content_type=content_type)))
    assert found.get("dvt-likely") == "critical", found


def test_a_note_fetched_by_url_is_read(evaluator: Evaluator) -> None:
    note = ehr.note("", url="Binary/ed-1")
    fetched = {"Binary/ed-1": FetchedAttachment("text/plain", NOTE.encode())}
    assert evaluator.note_attachment_urls([note]) == ["Binary/ed-1"]
    assert topics_of(evaluator, with_surgery(note), attachments=fetched).get("dvt-likely") == "critical"


@pytest.mark.parametrize(("note", "fetched", "why"), [
    (ehr.note("", url="Binary/gone"), {"Binary/gone": FetchedAttachment(None, None, "http_404")}, "http_404"),
    (ehr.note("", url="Binary/never"), {}, "not fetched"),
    (ehr.note("%PDF-1.4 ...", content_type="application/pdf"), {}, "application/pdf"),
    ({**ehr.note(""), "content": [{"attachment": {"contentType": "text/plain", "data": "@@not base64@@"}}]},
     {}, "base64"),
])
def test_an_unreadable_note_is_named_never_silently_skipped(evaluator: Evaluator, note: dict[str, Any],
                                                             fetched: dict[str, Any], why: str) -> None:
    """With a knee complaint and nothing else found, the unread note is a record-incomplete warning."""
    resources = [F.patient(), ehr.problem("Pain in right knee", icd="M25.561"), note]
    evaluation = evaluator.evaluate(resources, "p1", attachments=fetched)
    assert [u.reference for u in evaluation.record.unread] == [f"DocumentReference/{note['id']}"]
    assert why in evaluation.record.unread[0].detail
    card = next(c for c in evaluation.cards if c.source.topic and c.source.topic.code == "record-incomplete")
    assert card.indicator == "warning" and f"DocumentReference/{note['id']}" in (card.detail or "")


def test_superseded_and_erroneous_notes_are_not_read(recognizer: Recognizer) -> None:
    old = ehr.note("Calf pain.", status="superseded")
    wrong = {**ehr.note("Calf pain."), "docStatus": "entered-in-error"}
    assert record_of(recognizer, [old, wrong]).narrative == ()


def test_the_current_encounter_is_the_one_the_call_names(recognizer: Recognizer) -> None:
    """With context.encounterId, that encounter's reason is today's complaint; without one, the encounter
    in progress; a finished visit two months ago is not a current complaint."""
    named = ehr.encounter("Left calf pain", status="finished", days=1, rid="visit-1")
    ongoing = ehr.encounter("Right calf pain", status="in-progress", days=10, rid="visit-2")
    old = ehr.encounter("Right knee pain", status="finished", days=60, rid="visit-0")
    by_id = record_of(recognizer, [named, ongoing, old], encounter_id="visit-1")
    current = [f for f in by_id.narrative if by_id.within(f, 1)]
    assert {f.reference for f in current} == {"Encounter/visit-1"}
    without = record_of(recognizer, [named, ongoing, old])
    assert {f.reference for f in without.narrative if without.within(f, 0.5)} == {"Encounter/visit-2"}


def test_a_diagnosis_of_the_current_encounter_is_current(recognizer: Recognizer) -> None:
    undated = ehr.problem("Pain behind the right knee", onset_days=None, rid="dx-1")
    for key in ("recordedDate", "onsetDateTime"):
        undated.pop(key, None)
    record = record_of(recognizer, [undated, ehr.encounter("Knee pain", diagnoses=("dx-1",))])
    condition = next(f for f in record.conditions if f.has("knee-complaint"))
    assert condition.when is not None and record.within(condition, 1)


# ---- over HTTP ------------------------------------------------------------------------------------


def test_notes_and_the_visit_reason_over_http(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    secret = "Zebulon-Quixotic-7731"
    resources = with_surgery(ehr.encounter("R calf pain"),
                             ehr.note(f"{NOTE} Lives with {secret}.", kind="ed"))
    with caplog.at_level(logging.DEBUG):
        response = client.post(SERVICE_URL, json=F.hook_request(resources))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    cards = {c["source"]["topic"]["code"]: c for c in response.get_json()["cards"]}
    assert cards["dvt-likely"]["indicator"] == "critical"
    # the card names the finding in words; the note behind it, with its sentence, is on the companion page
    link = next(link["url"] for link in cards["dvt-likely"]["links"] if "/companion/" in link["url"])
    assert client.application.extensions["cds"].store.flush()
    snapshot = client.get(link.replace("/companion/?", "/companion/api/evaluation?")).get_json()
    cited = [item["evidence"] for card in snapshot["cards"] if card["topic"] == "dvt-likely"
             for item in card["table"]["items"] if item["state"] == "documented"]
    assert any(e["reference"].startswith("DocumentReference/") and e.get("quote") for e in cited), "the note is cited"
    assert secret not in caplog.text and "swollen" not in caplog.text, "notes are never logged"


@pytest.mark.parametrize("where", ["patient", "subject"])
def test_another_patients_record_is_refused(client: FlaskClient, where: str) -> None:
    resources = [F.patient(pid="p1", age=50), F.condition(F.ICD10, "M79.662", "Pain in left lower leg"),
                 F.temperature(39.0)]
    body = F.hook_request(resources)
    if where == "patient":
        body["prefetch"]["patient"]["id"] = "someone-else"
    else:
        body["prefetch"]["observations"]["entry"][0]["resource"]["subject"] = {
            "reference": "https://ehr.example/fhir/Patient/someone-else"}
    response = client.post(SERVICE_URL, json=body)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "patient_mismatch" and "cards" not in answer
    assert answer["resources_of_another_patient"] == {"Patient": 1} if where == "patient" else {"Observation": 1}
    assert "someone-else" not in response.get_data(as_text=True), "no identifiers in the answer"


def test_a_note_sent_as_base64_keeps_its_bytes(recognizer: Recognizer) -> None:
    """Non-ASCII in a note (UTF-8 by default, the declared charset otherwise) is decoded, not dropped."""
    text = "Douleur mollet gauche, pas de fièvre. Left calf pain."
    note = ehr.note(text)
    note["content"][0]["attachment"]["data"] = base64.b64encode(text.encode("latin-1")).decode()
    note["content"][0]["attachment"]["contentType"] = "text/plain; charset=latin-1"
    record = record_of(recognizer, [note])
    assert any(f.has("knee-complaint") and f.laterality == "left" for f in record.narrative)
