"""Is each measure what its own words say? The words of a measure's phrase, checked against its definition.

Coverage (coverage.py) accepts a word when any element's phrase holds it, so "average order value"
computed as the average of a customer's lifetime value passes: "order" is explained by some other
column (a first-order date). Grounding is stricter for measures: every content word of a measure's
phrase must be explained by the measure itself (the column or columns it aggregates, the table they
belong to, the rows it counts, its own conditions), by another element whose phrase holds the word
("per month" in "total sales per month"), by a business term of the Service's glossary, or be a word
of aggregation ("average", "total", "number") or, for a measure of a numeric column, a word of money
("value", "revenue", "spend"), or, for a measure over all time (no window), "lifetime". A word none of these
explain means the design measures something else than what was asked: the design is refused with the word named.
"""

from __future__ import annotations

from endpoints.interpretation import Col, Interpretation, Measure
from endpoints.verification.coverage import ASCENDING, DESCENDING, NUMBER_WORDS
from endpoints.verification.findings import Finding
from endpoints.verification.lexicon import content_words, related, stems, word_set, words

AGGREGATION_WORDS = word_set(
    "average averages avg mean median total totals sum sums summed number numbers count counts counted many much "
    "overall combined typical aggregate"
)
ALL_TIME_WORDS = word_set("lifetime alltime ever")
SHARE_WORDS = word_set("share shares proportion percentage percent fraction")
MONEY_WORDS = word_set(
    "value values valued revenue revenues sales sale sold spend spends spent spending amount amounts money price "
    "prices priced cost costs income turnover earnings earned worth dollars dollar euros euro takings billing "
    "billed charged charges"
)


# A duration (a measure with `until`) is a time: these words, and its unit's, say what it measures.
DURATION_WORDS = word_set(
    "time times duration durations long longer took take takes taken elapsed seconds second minutes minute hours "
    "hour days day"
)


def _objects(interp: Interpretation) -> dict[str, str]:
    return {e.alias: e.object for e in interp.entities}


def _identifiers(measure: Measure, interp: Interpretation) -> list[str]:
    """What the measure is defined on: its columns, their tables, the rows it counts, its own conditions."""
    objects = _objects(interp)
    out: list[str] = []

    def add_col(col: Col | None) -> None:
        if col is None:
            return
        out.append(col.column)
        if col.entity in objects:
            out.append(objects[col.entity])

    add_col(measure.column)
    add_col(measure.times)
    add_col(measure.until)
    for col in measure.expression_columns():
        add_col(col)
    if measure.entity and measure.entity in objects:
        out.append(objects[measure.entity])
    if measure.column is None and measure.entity is None and interp.entities:
        out.append(interp.entities[0].object)  # count(*) of the main entity's rows
    for f in measure.filters:
        add_col(f.column)
        for value in [f.value, *(f.values or [])]:
            if isinstance(value, str):
                out.append(value)
    if measure.window is not None:
        add_col(measure.window.column)
    return out


def _other_phrase_words(interp: Interpretation, path: str) -> set[str]:
    found: set[str] = set()
    for other, phrase in interp.phrases():
        if other == path or other.startswith(path + "."):
            continue
        for w in words(phrase):
            found |= stems(w.lower)
    return found


def measure_grounding_check(*, interpretation: Interpretation, terms: list[str] | None = None) -> list[Finding]:
    """Every content word of each measure's phrase is explained by the measure (see the module docstring)."""
    interp = interpretation
    defined: set[str] = set()
    for term in terms or []:
        for w in words(term):
            defined |= stems(w.lower)
    findings: list[Finding] = []
    for i, measure in enumerate(interp.measures):
        if not measure.phrase.strip():
            continue
        path = f"measures[{i}]"
        identifiers = _identifiers(measure, interp)
        elsewhere = _other_phrase_words(interp, path)
        for word in content_words(measure.phrase):
            w = word.lower
            if word.is_number or word.quoted or w in NUMBER_WORDS:
                continue
            if w in AGGREGATION_WORDS or w in DESCENDING or w in ASCENDING:
                continue
            if stems(w) & (defined | elsewhere):
                continue
            if w in MONEY_WORDS and measure.column is not None:
                continue
            if w in DURATION_WORDS and measure.until is not None:
                continue
            if w in ALL_TIME_WORDS and measure.window is None and not interp.windows:
                continue  # "lifetime spend": over every row, which a measure with no window is
            if w in SHARE_WORDS and measure.share:
                continue
            if any(related(w, identifier) for identifier in identifiers):
                continue
            what = f"{measure.func.upper()}({measure.column.column})" if measure.column else "a count of rows"
            if measure.until is not None and measure.column is not None:
                what = f"{measure.func.upper()}({measure.until.column} - {measure.column.column})"
            findings.append(
                Finding(
                    "grounding",
                    False,
                    f"'{word.text}' in '{measure.phrase}' is not what the design measures ({what})",
                    element=path,
                    phrase=measure.phrase,
                )
            )
    return findings
