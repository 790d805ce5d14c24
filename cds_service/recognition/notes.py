"""Clinical notes (DocumentReference) to text, and to facts through the clinical text reader.

Which notes are read (cds_service/notes.py, shared with the prefetch edge that fetches attachments by
URL): status current, not entered in error, newest first, at most `max_notes` of them. A note's text is
its first readable attachment:
inline base64 `data`, or the content fetched from its `url` at the prefetch edge (same FHIR server, same
token, same deadline). text/plain, text/html and text/rtf are read; anything else (a PDF, an image) and
anything that could not be fetched or decoded is named as unread, never silently skipped.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, Protocol

from striprtf.striprtf import rtf_to_text

from ..notes import READABLE_TYPES, attachments, current_notes, media_type, note_time
from ..record.model import Fact
from .reading import Reading, facts_from, label_of, reference_of

TEXT_TYPES = frozenset(READABLE_TYPES)
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
                         "table", "ul", "ol", "dt", "dd", "pre", "hr"})
_CELL_TAGS = frozenset({"td", "th"})


class AttachmentContent(Protocol):
    """What the prefetch edge fetched for an attachment URL (prefetch.FetchedAttachment)."""

    content_type: str | None
    data: bytes | None
    error: str | None


class NoteNotReadable(Exception):
    """The note has no attachment the service can read; the message says why (no note text in it)."""


class _HtmlText(HTMLParser):
    """Text of an HTML note, with a line break at every block element (sentences end there). The cells
    of a table row stay on one line, joined by ": ", so a template's question and its answer are read
    together ("Pregnant? | No" → "Pregnant?: No", "Pedal pulses palpable | No")."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._cells = 0  # cells opened in the current row
        self._in_cell = 0  # depth of open cells

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        elif tag in _CELL_TAGS:
            if self._cells:
                self.parts.append(" " if "".join(self.parts[-2:]).rstrip().endswith(":") else ": ")
            self._cells += 1
            self._in_cell += 1
        elif tag in _BLOCK_TAGS:
            self._block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._skip = max(0, self._skip - 1)
        elif tag in _CELL_TAGS:
            self._in_cell = max(0, self._in_cell - 1)
        elif tag in _BLOCK_TAGS:
            self._block(tag)

    def _block(self, tag: str) -> None:
        """A line break, except for a block inside a table cell (`<td><p>Pulses</p></td>`)."""
        if self._in_cell and tag not in {"tr", "table"}:
            self.parts.append(" ")
            return
        self._cells = self._in_cell = 0
        self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _charset(content_type: str | None) -> str:
    """The charset of a contentType such as `text/html; charset=ISO-8859-1` (UTF-8 when unstated)."""
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def decode_note(content_type: str | None, data: bytes) -> str:
    """The readable text of a note's bytes; NoteNotReadable for a type the service cannot read."""
    media, charset = media_type(content_type) or "", _charset(content_type)
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


def _readable_first(raw: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The note's attachments, the most readable type first (plain text needs no markup stripped)."""
    rank = {kind: position for position, kind in enumerate(READABLE_TYPES)}
    return sorted(attachments(dict(raw)), key=lambda a: rank.get(media_type(a.get("contentType")) or "?", 99))


@dataclass(frozen=True)
class NoteSelection:
    """The notes one request reads, newest first, and those the budget leaves unread."""

    read: tuple[dict[str, Any], ...]
    left: tuple[dict[str, Any], ...]


def select_notes(resources: list[dict[str, Any]], max_notes: int) -> NoteSelection:
    """The current notes, newest first, cut at `max_notes` (the same choice as the prefetch edge's)."""
    notes = current_notes(resources)
    return NoteSelection(tuple(notes[:max_notes]), tuple(notes[max_notes:]))


def note_text(raw: Mapping[str, Any], fetched: Mapping[str, AttachmentContent]) -> str:
    """The text of a note: its first readable attachment; NoteNotReadable says why there is none."""
    reasons = []
    for attachment in _readable_first(raw):
        content_type = attachment.get("contentType")
        content_type = content_type if isinstance(content_type, str) else None  # not validated yet
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
