"""The verifier's own reading of a requirement: words, numbers, and which words carry no meaning.

Kept apart from any planner on purpose: the check that accounts for every phrase must not share
the author's blind spots. Only English function words and the verbs people use to ask for data
are ignorable; every other word must be explained by the design.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that select nothing: articles, pronouns, prepositions, auxiliaries, and the verbs and nouns
# of asking ("show me the list of ..."). Everything else in a requirement must be accounted for.
IGNORABLE = word_set(
    """a an the of for to in on at by with and or but as from into onto than that which who whom whose what
    this these those there here it its they them their theirs he him his she her hers we us our ours you your
    yours i me my mine is are was were be been being am do does did done have has had having can could should
    would will shall may might must also just only please each every all any some both either whether
    list lists listing show shows showing display give giving get getting find finding return returning fetch
    see view know tell want wanted need needed like looking look provide report reports calculate compute
    api endpoint endpoints data information info details detail records record rows row entries entry results
    result overview breakdown summary table tables along together including include includes plus
    where when how whom why whose ones one them"""
)

_TOKEN = re.compile(
    r"\d{4}-\d{2}-\d{2}|'[^']+'|\"[^\"]+\"|[A-Za-z][A-Za-z0-9]*(?:['\u2019-][A-Za-z0-9]+)*|\d+(?:[.,]\d+)*%?"
)
NEGATIONS = word_set(
    "never no not without nobody none nothing zero neither nor isn't aren't wasn't weren't haven't hasn't hadn't "
    "don't doesn't didn't won't cannot can't lacking lacks missing"
)


@dataclass(frozen=True)
class Word:
    text: str
    lower: str
    start: int
    end: int
    quoted: bool = False

    @property
    def is_number(self) -> bool:
        return bool(re.fullmatch(r"\d+(?:[.,]\d+)*%?", self.text))


def words(text: str) -> list[Word]:
    out = []
    for m in _TOKEN.finditer(text or ""):
        raw = m.group(0)
        quoted = raw[:1] in "'\"" and raw[-1:] == raw[:1] and len(raw) > 1
        value = raw[1:-1] if quoted else raw
        lower = value.lower().replace("\u2019", "'")
        if lower.endswith("'s") and not quoted:
            lower = lower[:-2]
        out.append(Word(value, lower, m.start(), m.end(), quoted))
    return out


# Particles of the verbs of asking: "look up a customer", "looked up by name".
ASKING_PARTICLES = {"up": frozenset({"look", "looks", "looked", "looking"})}


def content_words(text: str) -> list[Word]:
    """Words the design must account for: everything but ignorable words (numbers included)."""
    found = words(text)
    return [
        w
        for i, w in enumerate(found)
        if w.quoted
        or w.is_number
        or (
            w.lower not in IGNORABLE
            and not (i and w.lower in ASKING_PARTICLES and found[i - 1].lower in ASKING_PARTICLES[w.lower])
        )
    ]


def stems(word: str) -> set[str]:
    """The word and light stems (plural, past tense, -ing), enough to tell names apart, not a lemmatizer."""
    w = word.lower()
    out = {w}
    if len(w) > 3:
        if w.endswith("ies"):
            out.add(w[:-3] + "y")
        if w.endswith(("ses", "xes", "ches", "shes")):
            out.add(w[:-2])
        if w.endswith("s") and not w.endswith("ss"):
            out.add(w[:-1])
        if w.endswith("ed"):
            out.update({w[:-2], w[:-1]})
            if len(w) > 5 and w[-3] == w[-4]:
                out.add(w[:-3])
        if w.endswith("ing") and len(w) > 5:
            out.update({w[:-3], w[:-3] + "e"})
            if w[-4] == w[-5]:
                out.add(w[:-4])
        if w.endswith("er") and len(w) > 5:
            out.add(w[:-2])
    return out


def name_words(identifier: str) -> list[str]:
    """The words of an identifier: snake_case, camelCase and digits split."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)
    return [p.lower() for p in re.split(r"[^A-Za-z0-9]+", spaced) if p]


def related(word: str, identifier: str) -> bool:
    """Whether a word of the requirement plainly names (part of) an identifier."""
    mine = stems(word)
    return any(mine & stems(part) for part in name_words(identifier))
