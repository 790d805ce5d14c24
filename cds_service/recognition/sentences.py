"""A spaCy component that splits clinical text into sentences: after a sentence end word and at a line
break. (No `from __future__ import annotations` here: spaCy reads the factory's annotations at run time.)"""

from typing import Any

from spacy.language import Language
from spacy.tokens import Doc

COMPONENT = "knee_sentences"


class SentenceSplitter:
    """Marks a sentence start after one of `ends` (".", "!", ";") and at every line break."""

    def __init__(self, ends: frozenset) -> None:
        self._ends = ends

    def __call__(self, doc: Doc) -> Doc:
        for index, token in enumerate(doc):
            if index == 0:
                token.is_sent_start = True
                continue
            previous = doc[index - 1]
            token.is_sent_start = (previous.text in self._ends or "\n" in previous.text
                                   or "\n" in token.text or "\n" in previous.whitespace_)
        return doc


@Language.factory(COMPONENT, default_config={"ends": [".", "!", ";"]})
def make_sentence_splitter(nlp: Language, name: str, ends: list) -> Any:
    return SentenceSplitter(frozenset(ends))
