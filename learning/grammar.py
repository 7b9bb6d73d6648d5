"""The words of a request's grammar: never business terms of any database.

A requirement's structure is read from these words (time windows, comparisons, recency, counts,
"a given X", the verbs of asking), so a glossary term made only of them would change how every
later requirement is read ("last" as a column catches "in the last 30 days"). The glossary refuses
such terms, and the planner never lets a term take a word its grammar has already read.
"""

from __future__ import annotations

import re


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


GRAMMAR_WORDS = _word_set(
    # articles, pronouns, prepositions, conjunctions, auxiliaries
    """a an the of for to in on at by with without and or nor but as from into onto than that which who whom
    whose what this these those there here it its they them their theirs he him his she her hers we us our ours
    you your yours i me my mine is are was were be been being am do does did done doing have has had having
    can could should would will shall may might must not no never nobody none nothing neither either whether
    where when how why also just only please so such very too then
    up down out off about across along around through via against among upon"""
    # quantifiers, comparisons, rankings, counts
    """ each every all any some both many much more most less least fewer fewest over above below under beyond
    exceeding exceeds exceed greater higher lower larger bigger smaller longer shorter top bottom
    best worst biggest largest highest lowest smallest once twice thrice times again same other others
    number numbers count counts total totals sum average avg mean maximum max minimum min
    one two three four five six seven eight nine ten eleven twelve fifteen twenty fifty hundred thousand"""
    # time and recency
    """ last first next previous past recent recently latest newest oldest earliest ago since before after until
    till between during within current currently today yesterday tomorrow now ever yet still already
    day days week weeks month months quarter quarters year years hour hours minute minutes second seconds
    daily weekly monthly quarterly yearly annual annually"""
    # "a given X", and the verbs and nouns of asking
    """ given specific particular certain selected chosen specified
    list lists show shows find get give fetch display return see view look looking search tell know want need
    like provide report calculate compute api endpoint endpoints data information info details detail
    records record rows row entries entry results result ones"""
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def grammar_words_of(text: str) -> list[str]:
    """The words of `text` (lowercased), as the grammar sees them."""
    return _WORD.findall((text or "").lower().replace("\u2019", "'"))


def is_grammatical(text: str) -> bool:
    """Whether every word of `text` is a word of the grammar (or a number): nothing a business would define."""
    found = grammar_words_of(text)
    return bool(found) and all(w in GRAMMAR_WORDS or w.isdigit() for w in found)
