"""Adjectives that rank groups by their measure ('our best-selling product categories, by sales revenue').

'best-selling', 'top-performing', 'highest-earning' before the groups, with no number, orders every group
by the measure (best, top, highest: the most first; worst, lowest: the least first); a number ("the 5
best-selling") is a top N, read elsewhere.
"""

from __future__ import annotations

import re
from typing import Any

from endpoints.verification.coverage import TOP_PER_GROUP

RANKED = re.compile(
    r"\b(best|top|worst|highest|lowest|biggest)[- ](selling|sellers?|performing|earning|grossing|paying|spending)\b"
)
DESCENDING = frozenset({"best", "top", "highest", "biggest"})


def read_ranking_adjective(a: Any, index: Any) -> None:
    """Order the groups by the measure when an adjective ranks them; its words are then accounted for.

    The groups are the table the words right after it name ('best-selling product categories': the last
    of the names that follow, categories); one row per group."""
    if a.phrases.top_n is not None or a.measure_order is not None or a.phrases.metric is None:
        return
    match = RANKED.search(a.requirement.lower())
    if match is None:
        return
    start, end = match.span()
    if a.phrases.explains(start, end):
        return
    following = sorted((m for m in a.mentions if a.tokens[m.start].start >= end), key=lambda m: m.start)
    run = []
    for mention in following:
        if run and mention.start != run[-1].end:
            break
        if not run and any(end <= t.start < a.tokens[mention.start].start for t in a.tokens if t.lower not in ("our",)):
            break
        run.append(mention)
    if not run:
        return
    head = run[-1]
    a.group_entity = index.tables[head.best()[1]]
    a.group_phrase = a.requirement[a.tokens[run[0].start].start : a.tokens[head.end - 1].end]
    a.measure_order = ("desc" if match.group(1) in DESCENDING else "asc", a.requirement[start:end])
    a.phrases.spans.append((start, end))
    a.steps.append(f"'{a.requirement[start:end]}': every group, ordered by the measure.")


def top_per_group(a: Any) -> str | None:
    """'The best-selling product in each category', 'the top 3 films of every genre': the first rows within each
    group, which an endpoint cannot offer yet; the reason to decline, with what to ask instead (never a ranking
    over every row)."""
    if a.phrases.top_n is None and a.measure_order is None:
        return None
    match = TOP_PER_GROUP.search(a.requirement.lower())
    if match is None:
        return None
    group = match.group("group")
    return (
        f"'{a.requirement[match.start() : match.end()]}' asks for the top ones within each {group}; "
        f"I cannot pick them per {group} yet. Ask for all of them with their {group}, ranked, "
        f"or for the top ones of a given {group}"
    )
