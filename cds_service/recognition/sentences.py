"""A spaCy component that splits clinical text into sentences: after a sentence end word and at a line
break. (No `from __future__ import annotations` here: spaCy reads the factory's annotations at run time.)"""

import itertools
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span

COMPONENT = "knee_sentences"


class SentenceSplitter:
    """Marks a sentence start after one of `ends` (".", "!", ";") and at every line break."""

    def __init__(self, ends: frozenset) -> None:
        self._ends = ends

    def _starts(self, doc: Doc) -> list[bool]:
        starts = []
        for index, token in enumerate(doc):
            previous = doc[index - 1] if index else None
            starts.append(previous is None or previous.text in self._ends or "\n" in previous.text
                          or "\n" in token.text or "\n" in previous.whitespace_)
        return starts

    def __call__(self, doc: Doc) -> Doc:
        for token, start in zip(doc, self._starts(doc), strict=True):
            token.is_sent_start = start
        return doc

    def sentences(self, doc: Doc) -> list[Span]:
        """The sentences of a tokenised text, without marking the Doc."""
        starts = [i for i, start in enumerate(self._starts(doc)) if start] + [len(doc)]
        return [doc[a:b] for a, b in itertools.pairwise(starts) if b > a]


@Language.factory(COMPONENT, default_config={"ends": [".", "!", ";"]})
def make_sentence_splitter(nlp: Language, name: str, ends: list) -> Any:
    return SentenceSplitter(frozenset(ends))
