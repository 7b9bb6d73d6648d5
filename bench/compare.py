"""Whether an endpoint's rows answer a requirement like its reference query: the accuracy bench's rules.

- Same number of rows: the whole result, fetched page by page; a result the endpoint cut (at a
  cap, a default top_n, a LIMIT) is wrong, whether or not it says `truncated`.
- Every reference column is matched by its own endpoint column with equal values: by name
  (case and underscores ignored) when the values agree, else by the column whose values agree.
  Up to MAX_EXTRA_COLUMNS further columns are allowed.
- Values: numbers equal to 2 decimals: within half a unit of the second decimal (so that 2.345
  and 2.3449 agree, but a price rounded to whole dollars does not), or within a millionth of
  their size, for single-precision sums; booleans as
  numbers, dates and times as ISO text (UTC; midnight is the day itself, 'YYYY-MM' the month's
  first day), text without trailing blanks (CHAR padding).
- The rows are equal as a multiset; when order matters, the sequence of the ordering columns is
  the reference's (rows that tie on them may come in any order).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

MAX_EXTRA_COLUMNS = 8
RELATIVE_TOLERANCE = 1e-6
HALF_CENT = 0.005 + 1e-9
DIGITS = 6  # kept before comparing; HALF_CENT decides
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    why: str = ""
    mapping: dict | None = None  # reference column -> endpoint column


def normalise(value: Any) -> Any:
    """One comparable form per value (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal)):
        return round(float(value), DIGITS)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if value.time() == time(0, 0):  # a day or a period's start, however it is typed
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    if isinstance(value, str):
        text = value.rstrip(" ")
        if _NUMBER.match(text):
            return round(float(text), DIGITS)
        if _DATETIME.match(text):
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return text
            return normalise(parsed)
        if _MONTH.match(text):  # '2025-03': the month that starts on 2025-03-01
            return f"{text}-01"
        return text
    if isinstance(value, (list, tuple)):
        return ",".join(str(normalise(v)) for v in value)
    return str(value)


def _close(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= max(HALF_CENT, RELATIVE_TOLERANCE * max(abs(a), abs(b)))
    return False


def _sort_key(value: Any) -> tuple:
    return (value is None, type(value).__name__, value if value is not None else 0)


def _same_values(expected: list, got: list) -> bool:
    """Equal as multisets: exactly after normalising, else pairwise within the numeric tolerance."""
    if len(expected) != len(got):
        return False
    if Counter(expected) == Counter(got):
        return True
    return all(_close(a, b) for a, b in zip(sorted(expected, key=_sort_key), sorted(got, key=_sort_key), strict=True))


def _same_rows(expected: list[tuple], got: list[tuple]) -> tuple[int, list[tuple]]:
    """How many expected rows have no counterpart among the rows got, and a few of them."""
    missing: list[tuple] = []
    for row, count in (Counter(expected) - Counter(got)).items():
        missing += [row] * count
    extra = list((Counter(got) - Counter(expected)).elements())
    unmatched = []
    for row in missing:  # tolerate single-precision noise: pair each leftover with a close one
        for index, candidate in enumerate(extra):
            if all(_close(a, b) for a, b in zip(row, candidate, strict=True)):
                extra.pop(index)
                break
        else:
            unmatched.append(row)
    return len(unmatched), unmatched[:3]


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _assign(ref_columns: list[str], candidates: dict[str, list[str]], test) -> dict[str, str] | None:
    """A one-to-one choice of endpoint column per reference column for which `test` holds."""

    def search(index: int, chosen: dict[str, str]) -> dict[str, str] | None:
        if index == len(ref_columns):
            return dict(chosen) if test(chosen) else None
        column = ref_columns[index]
        for candidate in candidates[column]:
            if candidate in chosen.values():
                continue
            chosen[column] = candidate
            found = search(index + 1, chosen)
            if found is not None:
                return found
            del chosen[column]
        return None

    return search(0, {})


def _sequence(rows: list[dict], columns: Sequence[str]) -> list[tuple]:
    return [tuple(normalise(row.get(c)) for c in columns) for row in rows]


def result_compare(
    *,
    reference: list[dict],
    actual: list[dict],
    ordered_by: Sequence[str] = (),
    truncated: bool = False,
) -> Verdict:
    """Whether `actual` (every row the endpoint returned, all pages) answers like `reference`."""
    if not reference:
        raise ValueError("an empty reference cannot tell a right answer from a wrong one")
    if truncated:
        return Verdict(False, f"the endpoint stopped at {len(actual)} rows and says truncated (of {len(reference)})")
    if len(actual) != len(reference):
        return Verdict(False, f"{len(actual)} rows instead of {len(reference)}")
    ref_columns = list(reference[0].keys())
    act_columns = list(actual[0].keys())
    ref_values = {c: [normalise(r.get(c)) for r in reference] for c in ref_columns}
    act_values = {c: [normalise(r.get(c)) for r in actual] for c in act_columns}
    candidates: dict[str, list[str]] = {}
    for column in ref_columns:
        fits = [c for c in act_columns if _same_values(ref_values[column], act_values[c])]
        # the same name first, then the endpoint's column order
        fits.sort(key=lambda c: (_key(c) != _key(column), act_columns.index(c)))
        if not fits:
            named = next((c for c in act_columns if _key(c) == _key(column)), None)
            if named is not None:
                pairs = zip(
                    sorted(ref_values[column], key=_sort_key), sorted(act_values[named], key=_sort_key), strict=True
                )
                differ = [(a, b) for a, b in pairs if not _close(a, b)]
                return Verdict(
                    False,
                    f"column '{named}' holds other values than the reference's '{column}' "
                    f"({len(differ)} of {len(reference)} differ, e.g. {differ[0][1]!r} where {differ[0][0]!r} "
                    "is expected)",
                )
            return Verdict(
                False,
                f"no endpoint column holds the values of '{column}' (endpoint columns: {', '.join(act_columns)})",
            )
        candidates[column] = fits
    expected_rows = [tuple(normalise(r.get(c)) for c in ref_columns) for r in reference]

    def rows_match(chosen: dict[str, str]) -> bool:
        got = [tuple(normalise(r.get(chosen[c])) for c in ref_columns) for r in actual]
        return _same_rows(expected_rows, got)[0] == 0

    mapping = _assign(ref_columns, candidates, rows_match)
    if mapping is None:
        first = {c: candidates[c][0] for c in ref_columns}
        got = [tuple(normalise(r.get(first[c])) for c in ref_columns) for r in actual]
        count, examples = _same_rows(expected_rows, got)
        shown = "; ".join(str(dict(zip(ref_columns, row, strict=True))) for row in examples[:2])
        return Verdict(
            False,
            f"{count} of {len(reference)} reference rows are not in the result (each column alone agrees), "
            f"e.g. {shown}",
        )
    extra = [c for c in act_columns if c not in mapping.values()]
    if len(extra) > MAX_EXTRA_COLUMNS:
        return Verdict(
            False,
            f"{len(extra)} columns beyond the reference's (at most {MAX_EXTRA_COLUMNS}): {', '.join(extra)}",
            mapping,
        )
    if ordered_by:
        unknown = [c for c in ordered_by if c not in ref_columns]
        if unknown:
            raise ValueError(f"ordered_by names columns the reference does not return: {', '.join(unknown)}")
        want = _sequence(reference, ordered_by)
        got_sequence = _sequence(actual, [mapping[c] for c in ordered_by])
        for index, (a, b) in enumerate(zip(want, got_sequence, strict=True)):
            if not all(_close(x, y) for x, y in zip(a, b, strict=True)):
                return Verdict(
                    False,
                    f"rows are not in the order of {', '.join(ordered_by)}: row {index + 1} has "
                    f"{', '.join(map(str, b))} where {', '.join(map(str, a))} is expected",
                    mapping,
                )
    return Verdict(True, "", mapping)
