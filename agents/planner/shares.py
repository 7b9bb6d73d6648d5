"""A share as a percentage ('share of last month's orders placed on mobile, per region, as a percentage').

'share of' / 'proportion of' / 'percentage of' before the counted rows, with 'as a percentage' (or 'in
percent') said somewhere, or 'percentage of' alone: 100 * the rows matching the requirement's value
filters / every row of the group, the window and the other conditions applying to both. The value
filters ('mobile') move into the measure; without one there is nothing to share, and it is declined.
"""

from __future__ import annotations

import re
from typing import Any

SHARE = re.compile(r"\b(?:the\s+)?(share|proportion|percentage|fraction)\s+of\b")
AS_PERCENT = re.compile(r"\b(?:as\s+an?|in)\s+(percentage|percent)\b|\bin\s+%")
# A verb and preposition before a value say how the row came to hold it ('placed on mobile').
VALUE_PREPOSITIONS = frozenset({"on", "via", "through", "by", "over", "from", "in", "at"})
PAST_PARTICIPLES = frozenset(
    {"made", "sold", "bought", "paid", "sent", "held", "won", "lost", "taken", "put", "done", "brought", "got", "kept"}
)


class ShareError(Exception):
    """A share was asked for and nothing says which rows it counts."""


def read_share(a: Any) -> None:
    """Note the share's words (its measure phrase and its unit phrase) so that they are accounted for."""
    lowered = a.requirement.lower()
    share = SHARE.search(lowered)
    if share is None:
        return
    unit = AS_PERCENT.search(lowered)
    if unit is None and share.group(1) != "percentage":
        return
    a.share = ((share.start(), share.end()), unit.span() if unit else None)
    a.phrases.spans.append((share.start(), share.end()))
    if unit is not None:
        a.phrases.spans.append(unit.span())
    a.steps.append("A share: 100 * the rows matching the values named / every row, per group.")


def take_share_filters(a: Any) -> None:
    """Move the value filters into the share ('on mobile': channel = 'mobile' counts, the rest do not)."""
    if a.share is None:
        return
    chosen = [f for f in a.filters if f.op == "eq" and f.other is None and f.expression is None and not f.required]
    if not chosen or a.fact is None or any(f.table != a.fact.key for f in chosen):
        raise ShareError("a share needs the value it counts on the rows it shares (say which, e.g. 'placed on web')")
    a.share_filters = chosen
    a.filters = [f for f in a.filters if f not in chosen]
    for f in chosen:
        _widen_value_phrase(a, f)


def _widen_value_phrase(a: Any, f: Any) -> None:
    """'placed on mobile': the verb and the preposition before the value belong to its phrase."""
    start = a.requirement.find(f.phrase) if f.phrase else -1
    if start < 0:
        return
    index = next((i for i, t in enumerate(a.tokens) if t.start == start), None)
    if index is None or index < 2:
        return
    preposition, verb = a.tokens[index - 1], a.tokens[index - 2]
    if preposition.lower in VALUE_PREPOSITIONS and (verb.lower.endswith("ed") or verb.lower in PAST_PARTICIPLES):
        f.phrase = a.requirement[verb.start : start + len(f.phrase)]
        a.phrases.spans.append((verb.start, start + len(f.phrase)))
