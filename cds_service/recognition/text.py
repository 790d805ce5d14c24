"""Clinical text through medspaCy: target rules from the code lists, ConText modifiers, sides.

One pipeline per worker, built at start-up from cards/: a blank English tokenizer, a sentence splitter
for clinical text (full stops, ";" and line breaks end a sentence), medspaCy's target matcher with every
code list's text rules, and ConText (medspaCy's default rules plus cards/text/context.yaml). A mention
is a matched rule with its modifiers (negated, historical, hypothetical, family, uncertain) and its side.

Cost is linear in the text: a text without any word a rule requires is not run through the pipeline
at all, answers are cached (bounded by the characters they hold), and callers cut texts to a budget.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import spacy
from medspacy.context import ConText, ConTextRule
from medspacy.target_matcher import TargetMatcher, TargetRule
from spacy.language import Language as SpacyLanguage
from spacy.tokens import Doc, Span

from ..knowledge import Knowledge, KnowledgeError
from ..knowledge.codes import TextRuleSpec
from ..knowledge.language import Language
from . import sentences

log = logging.getLogger(__name__)

SPAN_GROUP = "knee_targets"
QUOTE_MAX_CHARS = 150
CACHE_MAX_CHARS = 2_000_000  # characters of text whose answers are kept (a few MB per worker)
CACHE_TEXT_MAX_CHARS = 4_000  # longer texts (whole notes) are read, not cached
_NEGATED, _HISTORICAL, _HYPOTHETICAL = "NEGATED_EXISTENCE", "HISTORICAL", "HYPOTHETICAL"
_FAMILY, _UNCERTAIN = "FAMILY", "POSSIBLE_EXISTENCE"


@dataclass(frozen=True)
class Mention:
    """One matched text rule in one text, with what ConText and the side words say about it."""

    label: str  # the target rule; `ClinicalText.rules_of(label)` gives its concepts
    start: int  # character offsets of the match in the text read
    end: int
    negated: bool = False
    historical: bool = False
    hypothetical: bool = False
    family: bool = False
    uncertain: bool = False
    laterality: str | None = None
    sentence: str = ""  # the sentence it stands in, cut to QUOTE_MAX_CHARS around the match
    excluded: frozenset[str] = frozenset()  # concepts a longer phrase around it rules out ("hay fever")

    @property
    def about_patient(self) -> bool:
        """False for a hypothetical or a family member's mention: not a finding of this patient."""
        return not (self.hypothetical or self.family)


class TextNotRead(Exception):
    """The request's budget does not allow reading this text; `reason` is budget or deadline."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_Answer = tuple[bool, tuple[Mention, ...]]  # (the text has words a rule needs, its mentions)


class _CharBoundedCache:
    """Least-recently-used answers per text, bounded by the total characters of the texts kept."""

    def __init__(self, max_chars: int) -> None:
        self._items: OrderedDict[str, _Answer] = OrderedDict()
        self._chars = 0
        self._max = max_chars
        self._lock = threading.Lock()

    def get(self, text: str) -> _Answer | None:
        with self._lock:
            found = self._items.get(text)
            if found is not None:
                self._items.move_to_end(text)
            return found

    def put(self, text: str, answer: _Answer) -> None:
        with self._lock:
            if text in self._items:
                return
            self._items[text] = answer
            self._chars += len(text)
            while self._chars > self._max and self._items:
                old, _ = self._items.popitem(last=False)
                self._chars -= len(old)

    @property
    def chars(self) -> int:
        return self._chars

    def __len__(self) -> int:
        return len(self._items)


def _phrase_patterns(phrase: str, language: Language, nlp: SpacyLanguage,
                     where: str) -> list[list[dict[str, Any]]]:
    """spaCy token patterns from a phrase: words in order, `a|b` alternatives, `word?` optional, and up
    to `max_fillers` filler words or punctuation between two words. An alternative the tokenizer splits
    ("cannot" → "can" "not") gives a pattern of its own."""
    filler = {"LOWER": {"IN": sorted(language.fillers)}, "OP": f"{{0,{language.max_fillers}}}"}
    options_per_word: list[list[list[dict[str, Any]]]] = []
    for word in phrase.split():
        optional = len(word) > 1 and word.endswith("?")
        word = word[:-1] if optional else word
        alternatives = [a for a in word.split("|") if a]
        if not alternatives:
            raise KnowledgeError(where, f"text rule {phrase!r}: empty word")
        tokens = [[t.lower_ for t in nlp.tokenizer(a) if not t.is_space] for a in alternatives]
        single = [t[0] for t in tokens if len(t) == 1]
        options: list[list[dict[str, Any]]] = []
        if single:
            token: dict[str, Any] = {"LOWER": single[0]} if len(single) == 1 else {"LOWER": {"IN": single}}
            if optional:
                token["OP"] = "?"
            options.append([token])
        for sequence in (t for t in tokens if len(t) > 1):
            if optional:
                raise KnowledgeError(where, f"text rule {phrase!r}: {word!r}: an optional word must be one "
                                            f"word for the tokenizer")
            options.append([{"LOWER": t} for t in sequence])
        options_per_word.append(options)
    patterns: list[list[dict[str, Any]]] = [[]]
    for position, options in enumerate(options_per_word):
        patterns = [[*p, *([dict(filler)] if position else []), *option] for p in patterns for option in options]
    if len(patterns) > 64:
        raise KnowledgeError(where, f"text rule {phrase!r} expands to {len(patterns)} patterns (at most 64)")
    return patterns


def _literals(pattern: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The word sequences a pattern of plain words stands for (one word may have alternatives), or None
    when it has operators, fillers or other attributes and needs the token matcher."""
    sequences: list[list[str]] = [[]]
    for token in pattern:
        lower = token.get("LOWER")
        if set(token) != {"LOWER"}:
            return None
        if isinstance(lower, str):
            sequences = [[*s, lower] for s in sequences]
        elif isinstance(lower, dict) and set(lower) == {"IN"} and len(pattern) == 1:
            sequences = [[word] for word in lower["IN"]]
        else:
            return None
    return [" ".join(s) for s in sequences]


def _required_words(pattern: Sequence[Mapping[str, Any]]) -> set[str] | None:
    """The alternatives of one token every match must contain (the most specific), or None when a
    pattern has no such literal token (it is then always run)."""
    best: set[str] | None = None
    for token in pattern:
        if token.get("OP") not in (None, "1", "+"):
            continue
        lower = token.get("LOWER", token.get("TEXT"))
        words = {lower} if isinstance(lower, str) else set(lower.get("IN", ())) if isinstance(lower, dict) else None
        if not words:
            continue
        words = {w.lower() for w in words}
        if best is None or min(map(len, words)) > min(map(len, best)):
            best = words
    return best


class ClinicalText:
    """Reads clinical text into mentions; one instance per worker, safe to share between threads."""

    def __init__(self, knowledge: Knowledge, cache_chars: int = CACHE_MAX_CHARS) -> None:
        self._language = knowledge.language
        self._nlp = spacy.blank("en")
        self._nlp.add_pipe(sentences.COMPONENT, config={"ends": sorted(knowledge.language.sentence_ends)})
        self._rules: dict[str, tuple[TextRuleSpec, ...]] = {}
        self._excludes: dict[str, frozenset[str]] = {}
        self._trigger_words: set[str] = set()
        self._always_run = False
        matcher = self._nlp.add_pipe("medspacy_target_matcher",
                                     config={"result_type": "group", "span_group_name": SPAN_GROUP,
                                             "prune": False})
        matcher.add(self._target_rules(knowledge))
        context = knowledge.context_rules
        component = self._nlp.add_pipe(
            "medspacy_context",
            config={"rules": None, "input_span_type": "group", "span_group_name": SPAN_GROUP, "span_attrs": None},
        )
        ours = {r.literal for r in context.rules}  # a rule of cards/text/context.yaml replaces a default one
        defaults = ConTextRule.from_json(component.DEFAULT_RULES_FILEPATH) if context.use_defaults else []
        rules = [r for r in defaults if r.literal.lower() not in ours]
        rules += [ConTextRule(r.literal, r.category, direction=r.direction, max_scope=r.max_scope,
                              pattern=list(r.pattern) if r.pattern else None)
                  for r in context.rules]
        for rule in rules:  # a modifier reaches to the end of its sentence, and at most max_scope words
            if rule.max_scope is None and context.max_scope:
                rule.max_scope = context.max_scope
        component.add(rules)
        self._cache = _CharBoundedCache(cache_chars)
        self._sentences = _CharBoundedCache(cache_chars)
        self._splitter = sentences.SentenceSplitter(knowledge.language.sentence_ends)
        self._lock = threading.Lock()

    def _target_rules(self, knowledge: Knowledge) -> list[TargetRule]:
        """One medspaCy target rule per distinct pattern; a pattern in several lists names each concept."""
        by_pattern: dict[str, list[TextRuleSpec]] = {}
        patterns: dict[str, list[dict[str, Any]]] = {}
        for codes in knowledge.code_lists.values():
            for spec in codes.text_rules:
                compiled = ([list(spec.pattern)] if spec.pattern is not None
                            else _phrase_patterns(spec.phrase or "", knowledge.language, self._nlp, spec.where))
                for pattern in compiled:
                    key = json.dumps(pattern, sort_keys=True)
                    by_pattern.setdefault(key, []).append(spec)
                    patterns[key] = pattern
        rules = []
        for number, (key, specs) in enumerate(sorted(by_pattern.items())):
            label = f"r{number}"
            self._rules[label] = tuple(s for s in specs if not s.excluded)
            self._excludes[label] = frozenset(s.concept for s in specs if s.excluded)
            words = _required_words(patterns[key])
            if words is None:
                self._always_run = True
            else:
                self._trigger_words |= words
            literals = _literals(patterns[key])
            try:
                if literals is not None:  # a fixed word sequence goes to the phrase matcher: cheaper per token
                    rules += [TargetRule(literal, label) for literal in literals]
                else:
                    rules.append(TargetRule(specs[0].written, label, pattern=patterns[key]))
            except (ValueError, TypeError) as exc:
                raise KnowledgeError(specs[0].where, f"text rule {specs[0].written!r}: {exc}") from None
        return rules

    def rules_of(self, label: str) -> tuple[TextRuleSpec, ...]:
        """The code-list text rules a mention's label stands for."""
        return self._rules.get(label, ())

    @property
    def cached_chars(self) -> int:
        """Characters of text whose answers this worker keeps (texts and sentences)."""
        return self._cache.chars + self._sentences.chars

    def silent(self, text: str) -> bool:
        """True when `text` is known to hold no word any rule needs (read before, kept): reading it again
        would find nothing and charge nothing."""
        cached = self._cache.get(text) if len(text) <= CACHE_TEXT_MAX_CHARS else None
        return cached is not None and not cached[0]

    def read(self, text: str, charge: Callable[[int], str | None] | None = None) -> tuple[Mention, ...]:
        """Mentions in `text` (read whole: callers cut it). A text holding words some rule needs is
        charged to the request's budget first (`charge` returns why it may not be read, or None) and
        TextNotRead is raised when it may not; a text no rule can match costs only its tokenising."""
        if not text or not text.strip():
            return ()
        cacheable = len(text) <= CACHE_TEXT_MAX_CHARS
        cached = self._cache.get(text) if cacheable else None
        if cached is not None:
            triggered, mentions = cached
            if triggered and charge is not None and (reason := charge(len(text))):
                raise TextNotRead(reason)
            return mentions
        with self._lock:  # spaCy pipelines are not documented as thread-safe; the work is CPU-bound anyway
            doc = self._nlp.make_doc(text)
            sentences = [s for s in self._splitter.sentences(doc)
                         if self._always_run or any(t.lower_ in self._trigger_words for t in s)]
            if sentences and charge is not None and (reason := charge(len(text))):
                raise TextNotRead(reason)
            mentions = tuple(m for s in sentences for m in self._sentence(text[s.start_char:s.end_char], s.start_char))
        if cacheable:
            self._cache.put(text, (bool(sentences), mentions))
        return mentions

    def _sentence(self, sentence: str, offset: int) -> tuple[Mention, ...]:
        """Mentions of one sentence that holds a word some rule needs (modifiers and sides never cross a
        sentence, so each is read on its own and remembered: notes repeat their boilerplate)."""
        found = self._sentences.get(sentence)
        if found is None:
            doc = self._nlp.make_doc(sentence)
            for _, component in self._nlp.pipeline:
                doc = component(doc)
            found = self._mentions(doc)
            self._sentences.put(sentence, (True, found))
        else:
            found = found[1]
        return tuple(replace(m, start=m.start + offset, end=m.end + offset) for m in found) if offset else found

    def _mentions(self, doc: Doc) -> tuple[Mention, ...]:
        spans = list(doc.spans[SPAN_GROUP])
        excluding = [(s.start, s.end, self._excludes[s.label_]) for s in spans if self._excludes.get(s.label_)]
        found = []
        for span in spans:
            if not self._rules.get(span.label_):
                continue
            excluded = frozenset().union(*(concepts for a, b, concepts in excluding
                                           if a <= span.start and span.end <= b))
            categories = {m.category for m in span._.modifiers}
            found.append(Mention(
                label=span.label_,
                start=span.start_char,
                end=span.end_char,
                negated=_NEGATED in categories,
                historical=_HISTORICAL in categories,
                hypothetical=_HYPOTHETICAL in categories,
                family=_FAMILY in categories,
                uncertain=_UNCERTAIN in categories,
                laterality=self._side(doc, span, spans),
                sentence=_quote(span),
                excluded=excluded,
            ))
        return tuple(found)

    def _side(self, doc: Doc, span: Span, spans: Iterable[Span]) -> str | None:
        """The side a mention names: side words inside it, else the nearest within the window."""
        sides = self._language.sides
        inside = {sides[t.lower_] for t in span if t.lower_ in sides}
        if inside:
            return "bilateral" if len(inside) > 1 else inside.pop()
        others = [(s.start, s.end) for s in spans if (s.start, s.end) != (span.start, span.end)]
        sentence = span.sent
        window = self._language.side_window
        before = range(span.start - 1, max(sentence.start, span.start - window) - 1, -1)
        after = range(span.end, min(sentence.end, span.end + window))
        for indices in (before, after):
            for index in indices:
                token = doc[index]
                if token.lower_ in self._language.side_stop_words or any(a <= index < b for a, b in others):
                    break
                if token.lower_ in sides:
                    return sides[token.lower_]
        return None


def _quote(span: Span) -> str:
    """The mention's sentence, at most QUOTE_MAX_CHARS, cut around the mention."""
    sentence = " ".join(span.sent.text.split())
    if len(sentence) <= QUOTE_MAX_CHARS:
        return sentence
    offset = max(0, span.start_char - span.sent.start_char - QUOTE_MAX_CHARS // 3)
    cut = " ".join(span.sent.text[offset:].split())[: QUOTE_MAX_CHARS - 2]
    return ("…" if offset else "") + cut + "…"


def quiet_libraries() -> None:
    """PyRuSH and medspaCy log every sentence at DEBUG through loguru: silence them, it costs time."""
    try:
        from loguru import logger

        logger.disable("PyRuSH")
        logger.disable("medspacy")
    except ImportError:  # pragma: no cover - loguru comes with medspaCy
        pass


quiet_libraries()
_ = (TargetMatcher, ConText)  # importing them registers their spaCy factories
