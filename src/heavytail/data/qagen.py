"""Extractive questions generated from Wikipedia paragraphs by templates (this is not SQuAD).

Each template finds an answer span in one sentence (a year, a decade, a century, a count, a percentage, or the
subject of a definition) and turns the sentence into a question by replacing the span with a wh-phrase, e.g.
"The first known use of this word was in 1539." -> "The first known use of this word was in what year?"
The answer is the exact span of the paragraph, so `context[answer_start:].startswith(answer)` always holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# a sentence ends at . ! or ? (plus closing quotes) followed by space and a capital, a quote or a parenthesis
SENTENCE_END = re.compile(r"[.!?][\"'\u201d)\]]*\s+(?=[A-Z\"\u201c(])")
# a period after these does not end a sentence: initials (J. R. R.), U.S., Mr., c. 1500, e.g.
ABBREVIATION = re.compile(r"(?:\b[A-Za-z]|\b[A-Z][a-z]{0,2}|\b(?:[A-Za-z]\.)+[A-Za-z]|\b(?:ca|approx|vs|etc|Gen|Col|Sgt|Rev|Gov|Capt|Prof|Inc|Ltd|Corp|Co|No|Vol|pp|Fig))\.$")
YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b(?![\d%s-])")
DECADE = re.compile(r"\b(?:the|The) ((?:1[0-9]{2}|20[0-2])0s)\b")
CENTURY = re.compile(r"\b(?:the|The) ((?:[1-9]|1[0-9]|2[01])(?:st|nd|rd|th) century)\b")
COUNT = re.compile(r"\b(\d{1,3}(?:,\d{3})*(?:\.\d+)?(?: (?:hundred|thousand|million|billion))?) "
                   r"((?:[a-z-]+ )?[a-z]+s)\b")
PERCENT = re.compile(r"\b(\d{1,3}(?:\.\d+)?(?:%| percent))")
DEFINITION = re.compile(r"^((?:[A-Z][\w'-]*)(?: (?:of |the |de )?[A-Z][\w'-]*){0,4}) (?:is|was|are|were) "
                        r"(?:an?|the|one) ")
NOT_A_SUBJECT = {"The", "In", "This", "That", "These", "Those", "It", "He", "She", "They", "A", "An", "However",
                 "During", "After", "Although", "Many", "Some", "Most", "Its", "His", "Her", "Their", "By", "On",
                 "At", "As", "When", "While", "For", "From", "One", "There", "Since", "Other", "Such", "Each",
                 "What", "Which", "Who", "Another", "Both", "All", "Here", "Today", "Also", "Then", "Thus"}
MIN_QUESTION_WORDS = 5  # shorter questions carry too little context to be answerable


@dataclass(frozen=True)
class Question:
    """One generated question: the answer is context[answer_start:answer_start + len(answer)]."""

    kind: str
    question: str
    answer: str
    answer_start: int


def sentences(paragraph: str) -> Iterator[tuple[int, str]]:
    """(offset, sentence) pairs of one paragraph; a sentence never starts inside an abbreviation or a number."""
    start = 0
    for match in SENTENCE_END.finditer(paragraph):
        if ABBREVIATION.search(paragraph[max(start, match.start() - 12):match.start() + 1]):
            continue
        yield start, paragraph[start:match.end()].rstrip()
        start = match.end()
    if paragraph[start:].strip():
        yield start, paragraph[start:].rstrip()


def _as_question(sentence: str, start: int, end: int, phrase: str, side_words: int | None = None) -> str | None:
    before, after = sentence[:start], sentence[end:]
    if side_words is not None:
        # SQuAD questions are short (median ~10 words): keep the words next to the gap, not the whole sentence
        before_words = before.split()
        before = " ".join(before_words[len(before_words) - min(side_words, len(before_words)):]) + " "
        after = " " + " ".join(after.split()[:side_words])
    text = (before + phrase + after).strip().rstrip(".!?;:,").strip()
    if len(text.split()) < MIN_QUESTION_WORDS:
        return None
    return text[0].upper() + text[1:] + "?"


def _unique(sentence: str, answer: str) -> bool:
    # a span that occurs twice in its sentence gives a question with two right answers
    return sentence.count(answer) == 1


def sentence_questions(sentence: str) -> Iterator[tuple[str, str, int, int, str]]:
    """(kind, answer, start, end, wh-phrase) candidates: the wh-phrase replaces sentence[start:end]."""
    for m in YEAR.finditer(sentence):
        yield "year", m.group(1), m.start(1), m.end(1), "what year"
    for m in DECADE.finditer(sentence):
        yield "decade", m.group(1), m.start(0), m.end(0), "which decade"
    for m in CENTURY.finditer(sentence):
        yield "century", m.group(1), m.start(0), m.end(0), "which century"
    for m in COUNT.finditer(sentence):
        if not YEAR.fullmatch(m.group(1)):  # "in 1844 Europeans ..." is a year, not a count
            yield "count", m.group(1), m.start(1), m.end(1), "how many"
    for m in PERCENT.finditer(sentence):
        yield "percent", m.group(1), m.start(1), m.end(1), "what percentage"
    m = DEFINITION.match(sentence)
    if m and m.group(1).split()[0] not in NOT_A_SUBJECT:
        yield "definition", m.group(1), m.start(1), m.end(1), "what"


def paragraph_questions(paragraph: str, side_words: int | None = None) -> list[Question]:
    """Every template question of one paragraph; answers are exact spans of the paragraph."""
    found: list[Question] = []
    seen: set[int] = set()
    for offset, sentence in sentences(paragraph):
        for kind, answer, start, end, phrase in sentence_questions(sentence):
            answer_start = offset + sentence.index(answer, start)
            if answer_start in seen or not _unique(sentence, answer):
                continue
            question = _as_question(sentence, start, end, phrase, side_words)
            if question is None:
                continue
            seen.add(answer_start)
            found.append(Question(kind, question, answer, answer_start))
    return found


# the wh-phrase each template puts in its question, most specific first ("what" alone is the definition one);
# "when" is SQuAD's usual way to ask for a year
ASKED_KIND = (("what year", "year"), ("which decade", "decade"), ("which century", "century"),
              ("how many", "count"), ("what percentage", "percent"), ("when", "year"), ("what", "definition"))


def asked_kind(question: str) -> str | None:
    """The template kind a question asks for, from its wh-phrase; None when it has none of them."""
    lowered = question.lower()
    for phrase, kind in ASKED_KIND:
        if re.search(rf"\b{phrase}\b", lowered):
            return kind
    return None


def first_of_kind(question: str, context: str) -> str:
    """Baseline answer: the context's first span of the kind the question asks for ("" if there is none).

    Stronger than the first year: it knows the answer type, but not which of the candidates the question means.
    """
    kind = asked_kind(question)
    for _, sentence in sentences(context):
        for candidate_kind, answer, _, _, _ in sentence_questions(sentence):
            if candidate_kind == kind:
                return answer
    return ""

