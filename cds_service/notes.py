"""Which note attachments to fetch by URL: pure (no I/O), reusable by the recognition layer.

A clinical note is a `DocumentReference`; its text is an attachment given inline (`data`, base64) or by
`url` (often `Binary/123` on the FHIR server). `attachment_urls_to_fetch` picks, from the newest current
notes first, one readable URL-only attachment per note (text/plain, then text/html, then one without a
contentType), and none for a note that already carries a readable attachment inline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

# in order of preference; "" = no contentType given
READABLE_TYPES = ("text/plain", "text/markdown", "text/html", "application/xhtml+xml", "text/rtf",
                  "application/rtf", "")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def media_type(content_type: object) -> str | None:
    """The lower-case media type of a contentType ("text/plain; charset=utf-8" → "text/plain"); ""
    when absent, None when it is not a string."""
    if content_type is None:
        return ""
    if not isinstance(content_type, str):
        return None
    return content_type.split(";", 1)[0].strip().lower()


def _instant(value: object) -> dt.datetime | None:
    """A FHIR date, dateTime or instant as an aware datetime (a date is taken at midnight UTC)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if len(text) == 4 and text.isdigit():
        text += "-01-01"
    elif len(text) == 7 and text[4] == "-":
        text += "-01"
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def note_time(document: dict[str, Any]) -> dt.datetime | None:
    """When the note was written: `date`, else the period of its `context`, else `meta.lastUpdated`."""
    context = document.get("context")
    period = context.get("period") if isinstance(context, dict) else None
    meta = document.get("meta")
    for value in (document.get("date"),
                  period.get("end") if isinstance(period, dict) else None,
                  period.get("start") if isinstance(period, dict) else None,
                  meta.get("lastUpdated") if isinstance(meta, dict) else None):
        moment = _instant(value)
        if moment is not None:
            return moment
    return None


def attachments(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    content = document.get("content")
    for item in content if isinstance(content, list) else []:
        attachment = item.get("attachment") if isinstance(item, dict) else None
        if isinstance(attachment, dict):
            yield attachment


def _url_to_fetch(document: dict[str, Any]) -> str | None:
    """The one URL-only attachment of `document` worth fetching, or None."""
    by_type: dict[str, str] = {}
    for attachment in attachments(document):
        kind = media_type(attachment.get("contentType"))
        if kind not in READABLE_TYPES:
            continue
        if attachment.get("data") is not None:
            return None  # readable inline: nothing to fetch
        url = attachment.get("url")
        if isinstance(url, str) and url.strip():
            by_type.setdefault(kind, url)
    return next((by_type[kind] for kind in READABLE_TYPES if kind in by_type), None)


def is_current(document: dict[str, Any]) -> bool:
    """A DocumentReference with status `current` whose docStatus does not say entered-in-error."""
    return document.get("status") == "current" and document.get("docStatus") != "entered-in-error"


def current_notes(resources: Iterable[Any]) -> list[dict[str, Any]]:
    """The current notes, newest first (undated notes last)."""
    notes = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "DocumentReference"
             and is_current(r)]
    notes.sort(key=lambda note: note_time(note) or _EPOCH, reverse=True)
    return notes


def attachment_urls_to_fetch(resources: list[dict[str, Any]], max_notes: int = 10) -> list[str]:
    """URLs of readable attachments to fetch, newest current note first, at most `max_notes` notes
    (undated notes last); each URL exactly as its DocumentReference writes it."""
    urls: list[str] = []
    for note in current_notes(resources)[:max(0, max_notes)]:
        url = _url_to_fetch(note)
        if url is not None and url not in urls:
            urls.append(url)
    return urls
