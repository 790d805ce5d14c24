"""Clinical notes (DocumentReference) to text, and to facts through the clinical text reader.

Which notes are read: status current (or unstated), not entered in error, newest first (by `date`, else
the period of care), at most `max_notes` of them. A note's text is its first readable attachment:
inline base64 `data`, or the content fetched from its `url` at the prefetch edge (same FHIR server, same
token, same deadline). text/plain, text/html and text/rtf are read; anything else (a PDF, an image) and
anything that could not be fetched or decoded is named as unread, never silently skipped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from typing import Any, Protocol

from striprtf.striprtf import rtf_to_text

from ..record.fhir_time import first_time, parse_fhir_datetime
from ..record.model import Fact
from .reading import Reading, facts_from, label_of, reference_of

READ_STATUSES = frozenset({"current"})
DROPPED_DOC_STATUSES = frozenset({"entered-in-error"})
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/html", "application/xhtml+xml", "text/rtf",
                        "application/rtf", ""})
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "tr", "td", "h1", "h2", "h3", "h4", "h5", "h6", "section",
                         "table", "ul", "ol", "dt", "dd", "pre", "hr"})


class AttachmentContent(Protocol):
    """What the prefetch edge fetched for an attachment URL (prefetch.FetchedAttachment)."""

    content_type: str | None
    data: bytes | None
    error: str | None


class NoteNotReadable(Exception):
    """The note has no attachment the service can read; the message says why (no note text in it)."""


class _HtmlText(HTMLParser):
    """Text of an HTML note, with a line break at every block element (sentences end there)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _media(content_type: str | None) -> tuple[str, str]:
    """(media type, charset) of a contentType such as `text/html; charset=ISO-8859-1`."""
    if not isinstance(content_type, str):
        return "", "utf-8"
    media, _, params = content_type.partition(";")
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return media.strip().lower(), charset


def decode_note(content_type: str | None, data: bytes) -> str:
    """The readable text of a note's bytes; NoteNotReadable for a type the service cannot read."""
    media, charset = _media(content_type)
    if media not in TEXT_TYPES:
        raise NoteNotReadable(f"content type {media} is not text")
    try:
        text = data.decode(charset, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    if media in {"text/html", "application/xhtml+xml"} or (not media and text.lstrip().startswith("<")):
        parser = _HtmlText()
        parser.feed(text)
        parser.close()
        return "".join(parser.parts)
    if media in {"text/rtf", "application/rtf"} or (not media and text.lstrip().startswith("{\\rtf")):
        return str(rtf_to_text(text, errors="ignore"))
    return text


def note_time(raw: Mapping[str, Any]) -> datetime | None:
    context = raw.get("context")
    return parse_fhir_datetime(raw.get("date")) or (first_time(context, "period")
                                                    if isinstance(context, Mapping) else None)


def _attachments(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = []
    for content in raw.get("content") or []:
        attachment = content.get("attachment") if isinstance(content, Mapping) else None
        if isinstance(attachment, Mapping):
            found.append(attachment)
    # plain text first: it needs no markup stripped and is what the note says
    return sorted(found, key=lambda a: _media(a.get("contentType"))[0] != "text/plain")


@dataclass(frozen=True)
class NoteSelection:
    """The notes one request reads, newest first, and those the budget leaves unread."""

    read: tuple[dict[str, Any], ...]
    left: tuple[dict[str, Any], ...]


def select_notes(resources: list[dict[str, Any]], max_notes: int) -> NoteSelection:
    """The current notes, newest first, cut at `max_notes`."""
    notes = [r for r in resources if r.get("resourceType") == "DocumentReference"
             and r.get("status", "current") in READ_STATUSES and r.get("docStatus") not in DROPPED_DOC_STATUSES]
    notes.sort(key=lambda r: (note_time(r) is not None, note_time(r) or datetime.min), reverse=True)
    return NoteSelection(tuple(notes[:max_notes]), tuple(notes[max_notes:]))


def attachment_urls(resources: list[dict[str, Any]], max_notes: int) -> list[str]:
    """The attachment URLs the prefetch edge must fetch: those of the notes read that carry no data."""
    urls: list[str] = []
    for note in select_notes(resources, max_notes).read:
        for attachment in _attachments(note):
            if attachment.get("data"):
                break
            url = attachment.get("url")
            if isinstance(url, str) and url and _media(attachment.get("contentType"))[0] in TEXT_TYPES:
                urls.append(url)
                break
    return urls


def note_text(raw: Mapping[str, Any], fetched: Mapping[str, AttachmentContent]) -> str:
    """The text of a note: its first readable attachment; NoteNotReadable says why there is none."""
    reasons = []
    for attachment in _attachments(raw):
        content_type = attachment.get("contentType")
        data = attachment.get("data")
        try:
            if isinstance(data, str) and data:
                try:
                    return decode_note(content_type, base64.b64decode(data, validate=False))
                except (binascii.Error, ValueError):
                    raise NoteNotReadable("attachment data is not base64") from None
            url = attachment.get("url")
            if isinstance(url, str) and url:
                content = fetched.get(url)
                if content is None:
                    raise NoteNotReadable("attachment URL not fetched")
                if content.error or content.data is None:
                    raise NoteNotReadable(f"attachment could not be fetched ({content.error or 'no content'})")
                return decode_note(content.content_type or content_type, content.data)
        except NoteNotReadable as exc:
            reasons.append(str(exc))
    raise NoteNotReadable(reasons[0] if reasons else "no attachment")


def read_note(raw: dict[str, Any], reading: Reading, fetched: Mapping[str, AttachmentContent]) -> list[Fact]:
    """Facts of one note; an unreadable note is named as unread."""
    reference = reference_of(raw)
    try:
        text = note_text(raw, fetched)
    except NoteNotReadable as exc:
        reading.statements.note_unread(reference, "attachment", f"note not read: {exc}")
        return []
    statements = reading.text(text, reference, reading.limits.note_max_chars)
    if not statements or not reading.valid(raw, statements):
        return []
    return facts_from(statements, kind="DocumentReference", reference=reference,
                      label=label_of(raw.get("type"), "Clinical note"), when=note_time(raw),
                      status="current", source="note")
