"""Durations: 'average time to close a ticket, in hours', the time from a row's start date to its end date.

The end date is the one the verb names (close -> closed_at, ship -> shipped_at); the start date is the
row's own beginning (opened_at, created_at ...). The unit comes from "in hours" / "in minutes" / "in
days"; without one the request is declined with a message that asks for it. Rows without an end date
are left out. Nothing here knows a schema: only the verb, the date columns' names and their types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .schema_index import Column, Table
from .vocabulary import variants

if TYPE_CHECKING:  # pragma: no cover
    from .planner import Analysis

DURATION = re.compile(r"\btime\s+(?:it\s+takes\s+|taken\s+|needed\s+|spent\s+)?to\s+([a-z]+)\b")
UNIT = re.compile(r"\bin\s+(seconds|minutes|hours|days)\b")
UNITS = {"seconds": "second", "minutes": "minute", "hours": "hour", "days": "day"}
# Words of a date column that says when a row began.
START_WORDS = frozenset(
    {"opened", "created", "started", "start", "submitted", "reported", "raised", "logged", "placed", "ordered",
     "received", "requested", "begun", "began", "booked", "registered", "issued", "filed"}
)  # fmt: skip
AGGREGATES = frozenset({"avg", "sum", "min", "max"})


class DurationError(Exception):
    """A duration the requirement asks for that this schema cannot say unambiguously."""


def _dates(table: Table) -> list[Column]:
    return [
        c for c in table.columns.values() if c.is_temporal and not set(c.tokens) & {"update", "updated", "modified"}
    ]


def duration_columns(table: Table, verb: str) -> tuple[Column, Column]:
    """(start, end) dates of the rows for 'time to <verb>'; raises DurationError when not exactly one of each."""
    dates = _dates(table)
    forms = variants(verb)
    ends = [c for c in dates if any(variants(t) & forms for t in c.tokens)]
    if len(ends) != 1:
        raise DurationError(
            f"no single date of {table.name} says when its rows are {verb}d"
            if not ends
            else f"{', '.join(c.name for c in ends)} could each say when {table.name} rows are {verb}d"
        )
    end = ends[0]
    starts = [c for c in dates if c is not end and any(variants(t) & START_WORDS for t in c.tokens)]
    if not starts:
        others = [c for c in dates if c is not end]
        starts = others if len(others) == 1 else []
    if len(starts) != 1:
        raise DurationError(
            f"I cannot tell which date of {table.name} the time to {verb} starts from"
            + (f" ({', '.join(c.name for c in starts)})" if starts else "")
        )
    return starts[0], end


def read_duration(a: Analysis, *, make_filter: Callable) -> None:
    """'Average time to close a ticket, in hours': the measure is the hours from the start date to closed_at.

    Sets `a.duration` (start, end, unit, phrase) and leaves out rows without an end date; raises
    DurationError when the time is asked for but cannot be measured.
    """
    metric = a.phrases.metric
    lowered = a.requirement.lower()
    match = DURATION.search(lowered)
    if match is None or a.entity is None or metric is None or metric.func not in AGGREGATES:
        return
    if metric.span is None or metric.span[1] < match.start() or metric.span[0] > match.start():
        return  # "time" is not the word the average is of
    unit = UNIT.search(lowered)
    if unit is None:
        raise DurationError("say in which unit the time is wanted: in hours, in minutes or in days")
    start, end = duration_columns(a.entity, match.group(1))
    lo, hi = sorted((metric.span[0], match.end(), unit.start(), unit.end()))[::3]
    phrase = a.requirement[lo:hi]
    a.duration = (start, end, UNITS[unit.group(1)], phrase)
    a.phrases.spans += [(metric.span[0], match.end()), unit.span()]
    a.filters.append(make_filter(a.entity.key, end.name, None, phrase="", op="not_null", fixed=True))
    a.steps.append(
        f"Measure the time to {match.group(1)} as {end.name} minus {start.name}, in {unit.group(1)}; rows without "
        f"{end.name} are left out."
    )
