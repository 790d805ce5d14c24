"""Which note attachments are fetched by URL (cds_service/notes.py, pure)."""

from __future__ import annotations

from typing import Any

from cds_service.notes import attachment_urls_to_fetch, media_type


def doc(doc_id: str, *attachments: dict[str, Any], date: str | None = "2026-11-20T10:00:00Z",
        status: str = "current", **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "DocumentReference", "id": doc_id, "status": status,
                                "content": [{"attachment": a} for a in attachments], **extra}
    if date is not None:
        resource["date"] = date
    return resource


def url(value: str, content_type: str | None = "text/plain") -> dict[str, Any]:
    return {"url": value} if content_type is None else {"url": value, "contentType": content_type}


def test_newest_current_notes_first_and_at_most_the_limit() -> None:
    notes = [doc("old", url("Binary/old"), date="2026-01-01"),
             doc("new", url("Binary/new"), date="2026-11-20T10:00:00+01:00"),
             doc("mid", url("Binary/mid"), date="2026-06-01T00:00:00Z"),
             doc("undated", url("Binary/undated"), date=None),
             doc("by-period", url("Binary/period"), date=None, context={"period": {"start": "2026-11-19"}})]
    assert attachment_urls_to_fetch(notes, 10) == ["Binary/new", "Binary/period", "Binary/mid", "Binary/old",
                                                   "Binary/undated"]
    assert attachment_urls_to_fetch(notes, 2) == ["Binary/new", "Binary/period"]
    assert attachment_urls_to_fetch(notes, 0) == []


def test_only_current_notes_and_readable_types() -> None:
    notes = [doc("superseded", url("Binary/1"), status="superseded"),
             doc("error", url("Binary/2"), status="entered-in-error"),
             doc("doc-error", url("Binary/3"), docStatus="entered-in-error"),
             doc("pdf", url("Binary/4", "application/pdf")),
             doc("html", url("Binary/5", "text/html; charset=utf-8")),
             doc("untyped", url("Binary/6", None)),
             {"resourceType": "Observation", "id": "o1", "status": "final"}]
    assert sorted(attachment_urls_to_fetch(notes)) == ["Binary/5", "Binary/6"]


def test_one_url_per_note_text_first_and_none_when_inline() -> None:
    both = doc("both", url("Binary/html", "text/html"), url("Binary/plain", "text/plain"))
    inline = doc("inline", {"contentType": "text/plain", "data": "UGFpbg=="}, url("Binary/also", "text/html"))
    assert attachment_urls_to_fetch([both, inline]) == ["Binary/plain"]


def test_odd_shapes_are_skipped_not_raised() -> None:
    notes: list[Any] = [doc("a", "not an object"), {"resourceType": "DocumentReference", "status": "current",
                                                    "content": "x"},
                        doc("b", {"url": 5, "contentType": "text/plain"}), doc("c", {"url": "  "}),
                        doc("d", url("Binary/d"), date="yesterday"), "not a resource",
                        doc("e", {"url": "Binary/e", "contentType": ["text/plain"]})]
    assert attachment_urls_to_fetch(notes) == ["Binary/d"]


def test_media_type() -> None:
    assert media_type("Text/Plain; charset=UTF-8") == "text/plain"
    assert media_type(None) == ""
    assert media_type(3) is None
