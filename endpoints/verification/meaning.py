"""Tests that check meaning, derived from the interpretation and run on live data through the Role.

Each test runs the endpoint's SQL (and, where it needs one, a query the platform writes itself from
the interpretation) with the Role's permissions, row filters, timeout and row cap:

- formulation: a second SQL shape of the same interpretation returns the same rows;
- parameter: two different values give different results, and every row satisfies the filter;
- window: every date of the rows lies inside the time window;
- order: the rows come in the order of the ranking;
- negation: no returned row has a related row (checked row by row);
- aggregate: each measure recomputed for a row's group, straight from its fact table, agrees;
- lookup: a key value returns exactly one row, and the key is a required parameter;
- limit: "top N" returns N rows when there are at least N.

A design from which no test can be derived is flagged for human review.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from endpoints.compiler import Catalog, CompileError, interpretation_compile, measure_check, rows_repeat
from endpoints.interpretation import Bound, Filter, Interpretation, OutputColumn
from endpoints.params import parameters_parse
from endpoints.sqldialect import bucket_bounds, qualified, quote
from roles.executor import executor_run_sql

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 5
_LITERALS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass
class MeaningTest:
    name: str
    kind: str
    passed: bool
    detail: str
    inconclusive: bool = False

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "detail": self.detail,
            "inconclusive": self.inconclusive,
        }


@dataclass
class MeaningReport:
    tests: list[MeaningTest] = field(default_factory=list)
    example_params: dict = field(default_factory=dict)
    sample_rows: list[dict] = field(default_factory=list)

    @property
    def derived(self) -> int:
        return sum(1 for t in self.tests if not t.inconclusive)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tests)

    def as_dict(self) -> dict:
        return {
            "tests": [t.as_dict() for t in self.tests],
            "example_params": self.example_params,
            "sample_rows": self.sample_rows,
            "passed": self.passed,
            "derived": self.derived,
        }


class Runner:
    """Runs SQL with the Role's permissions; a small seam so the tests are plain functions."""

    def __init__(self, *, role, row_cap: int) -> None:
        self.role = role
        self.row_cap = row_cap

    def rows(self, sql: str, params: dict) -> tuple[list[dict], bool]:

        used = set(_BIND.findall(_LITERALS.sub(" ", sql)))
        params = {k: v for k, v in params.items() if k in used}
        result = executor_run_sql(role=self.role, sql=sql, params=params, limit=self.row_cap)
        return list(result.rows), bool(result.truncated)


# --- values ---------------------------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        number = float(value)
        return None if math.isnan(number) else round(number, 6)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return round(float(value), 6) if value.strip() and value.strip()[0] in "-0123456789" else value
        except ValueError:
            return value
    return str(value)


def _row_key(row: dict, columns: list[str] | None = None) -> tuple:
    names = columns or sorted(row)
    return tuple(_norm(row.get(c)) for c in names)


def _close(a: Any, b: Any) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= max(0.01, 1e-6 * max(abs(a), abs(b)))
    if a in (None, 0, 0.0) and b in (None, 0, 0.0):
        return True
    return a == b


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _shift(day: date, amount: int, unit: str) -> date:
    if unit in ("day", "week"):
        return day + timedelta(days=amount * (7 if unit == "week" else 1))
    months = amount * {"month": 1, "quarter": 3, "year": 12}[unit]
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return date(year, month + 1, min(day.day, last[month]))


def _unit_start(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def bound_date(bound: Bound, params: dict, *, edge: str, today: date | None = None) -> date | None:
    """The date a bound stands for, today, with these parameter values."""
    today = today or date.today()
    if bound.date is not None:
        return date.fromisoformat(bound.date)
    if bound.relative is not None:
        return _shift(today, bound.relative.amount, bound.relative.unit)
    if bound.calendar is not None:
        return _shift(_unit_start(today, bound.calendar.unit), bound.calendar.offset, bound.calendar.unit)
    value = params.get(bound.param or "")
    if value is None:
        return None
    if bound.param_unit == "year":
        return date(int(value) + (1 if edge == "end" else 0), 1, 1)
    if bound.param_unit == "month":
        start = date.fromisoformat(f"{value}-01")
        return _shift(start, 1, "month") if edge == "end" else start
    if bound.param_unit == "days_ago":
        return today - timedelta(days=int(value))
    return _as_date(value)


# --- deriving and running -----------------------------------------------------------------------------------


class MeaningTester:
    def __init__(
        self,
        *,
        interpretation: Interpretation,
        sql: str,
        parameters: dict,
        catalog: Catalog,
        dialect: str,
        runner: Runner,
        bind=None,
    ) -> None:
        self.interp = interpretation
        self.sql = sql
        self.parameters = parameters or {"type": "object", "properties": {}}
        self.catalog = catalog
        self.dialect = dialect
        self.runner = runner
        self.bind = bind or (lambda params: params)
        self.report = MeaningReport()

    # -- helpers
    def _parsed(self, values: dict) -> dict:
        parsed, problems = parameters_parse(schema=self.parameters, values=values, from_text=False)
        if problems:
            raise ValueError("; ".join(f"{p['field']}: {p['message']}" for p in problems))
        return parsed

    def _run(self, sql: str, values: dict) -> tuple[list[dict], bool]:
        return self.runner.rows(sql, self.bind(self._parsed(values)))

    def _add(self, name: str, kind: str, passed: bool, detail: str, *, inconclusive: bool = False) -> None:
        self.report.tests.append(MeaningTest(name, kind, passed, detail, inconclusive))

    def _distinct_values(self, f: Filter, limit: int = 6) -> list[Any]:
        entity = self.interp.entity(f.column.entity)
        info = self.catalog.get(entity.object)

        column = quote(f.column.column, self.dialect)
        table = qualified(info.key, self.dialect, default_schema=self.catalog.default_schema)
        sql = (
            f"SELECT {column} AS v, COUNT(*) AS n FROM {table} WHERE {column} IS NOT NULL "
            f"GROUP BY {column} ORDER BY n DESC, v ASC LIMIT {int(limit)}"
        )
        rows, _ = self.runner.rows(sql, {})
        return [r["v"] for r in rows]

    def _example(self) -> dict:
        """Defaults, and for required parameters a value that exists in the data."""
        values: dict[str, Any] = {}
        properties = self.parameters.get("properties") or {}
        for p in self.interp.parameters:
            default = (properties.get(p.name) or {}).get("default", p.default)
            if default is not None:
                values[p.name] = default
        for p in self.interp.parameters:
            if p.name in values:
                continue
            filters = [f for f in self._all_filters() if f.param == p.name]
            if filters:
                found = self._distinct_values(filters[0], limit=1)
                if found:
                    values[p.name] = found[0]
                    continue
            if p.enum:
                values[p.name] = p.enum[0]
            elif p.type == "date":
                values[p.name] = date.today().isoformat()
            elif p.type == "integer":
                values[p.name] = 1
        return values

    def _all_filters(self) -> list[Filter]:
        found = list(self.interp.filters)
        for m in self.interp.measures:
            found += m.filters
        for x in self.interp.exists:
            found += x.filters
        return found

    # -- the tests
    def run(self) -> MeaningReport:
        try:
            example = self._example()
        except Exception as exc:
            logger.info("no example parameters: %s", exc)
            example = {}
        self.report.example_params = {k: _norm(v) if not isinstance(v, str) else v for k, v in example.items()}
        try:
            rows, truncated = self._run(self.sql, example)
        except Exception as exc:
            self._add("the endpoint runs with its example parameters", "run", False, _message(exc))
            return self.report
        self.report.sample_rows = rows[:10]
        for test, kind in (
            (self._formulation, "formulation"),
            (self._parameters, "parameter"),
            (self._windows, "window"),
            (self._order, "order"),
            (self._negation, "negation"),
            (self._aggregates, "aggregate"),
            (self._lookup, "lookup"),
            (self._limit, "limit"),
        ):
            try:
                test(example, rows, truncated)
            except Exception as exc:  # a test that cannot run is a failure, said plainly
                logger.info("meaning test %s failed to run", kind, exc_info=True)
                self._add(f"the {kind} test runs", kind, False, _message(exc))
        return self.report

    def _formulation(self, example: dict, rows: list[dict], truncated: bool) -> None:
        compiled = []
        for shape in ("primary", "alternate"):
            try:
                compiled.append(
                    interpretation_compile(self.interp, catalog=self.catalog, dialect=self.dialect, shape=shape)
                )
            except CompileError as exc:
                self._add("a second formulation agrees", "formulation", False, exc.message)
                return
        others = [c for c in compiled if _squash(c.sql) != _squash(self.sql)]
        if not others:
            return
        other = others[0]
        theirs, their_truncated = self._run(other.sql, example)
        if truncated or their_truncated:
            self._add(
                "a second formulation agrees",
                "formulation",
                True,
                "results are larger than the row cap; compared the first rows only",
                inconclusive=True,
            )
            return
        names = sorted(set(rows[0]) & set(theirs[0])) if rows and theirs else []
        mine = Counter(_row_key(r, names) for r in rows)
        other_rows = Counter(_row_key(r, names) for r in theirs)
        same = len(rows) == len(theirs) and (mine == other_rows or _numeric_equal(mine, other_rows))
        detail = (
            f"{len(rows)} rows, the same as the platform's {other.shape} formulation"
            if same
            else f"{len(rows)} rows, but the platform's {other.shape} formulation of the same meaning returns "
            f"{len(theirs)} different ones"
        )
        self._add("a second formulation agrees", "formulation", same, detail)

    def _parameters(self, example: dict, rows: list[dict], truncated: bool) -> None:
        outputs = self._output_columns()
        for f in self.interp.filters:
            if not f.param or f.op not in ("eq", "contains", "ilike", "like"):
                continue
            values = [v for v in self._distinct_values(f) if v != example.get(f.param)]
            values = [example.get(f.param), *values] if example.get(f.param) is not None else values
            results = []
            for value in values:
                got, _ = self._run(self.sql, {**example, f.param: value})
                if got:
                    results.append((value, got))
                if len(results) == 2:
                    break
            name = f"{f.param} filters the rows"
            if len(results) < 2:
                self._add(name, "parameter", True, "fewer than two values with rows to compare", inconclusive=True)
                continue
            (v1, r1), (v2, r2) = results
            differ = Counter(_row_key(r) for r in r1) != Counter(_row_key(r) for r in r2)
            label = outputs.get(f.column.key())
            wrong = []
            if label is not None and f.op == "eq":
                for value, got in results:
                    wrong += [r for r in got if _norm(r.get(label)) != _norm(value)]
            passed = differ and not wrong
            detail = f"{f.param}={v1!r}: {len(r1)} rows; {f.param}={v2!r}: {len(r2)} rows"
            if not differ:
                detail += "; both values give the same rows, so the parameter changes nothing"
            if wrong:
                detail += f"; {len(wrong)} rows do not have {label} equal to the value asked for"
            self._add(name, "parameter", passed, detail)

    def _output_columns(self) -> dict[tuple[str, str], str]:
        out = {}
        for g in self.interp.group_by:
            if not g.bucket:
                out[g.column.key()] = g.label or g.column.column
        for s in self.interp.select:
            out.setdefault(s.column.key(), s.label or s.column.column)
        return out

    def _windows(self, example: dict, rows: list[dict], truncated: bool) -> None:
        for w in self.interp.windows:
            start = bound_date(w.start, example, edge="start") if w.start else None
            end = bound_date(w.end, example, edge="end") if w.end else None
            bucketed = [g for g in self.interp.group_by if g.column.key() == w.column.key() and g.bucket]
            outside = []
            checked = 0
            if bucketed:
                label = bucketed[0].label or bucketed[0].bucket
                for row in rows:
                    bounds = bucket_bounds(str(row.get(label)), bucketed[0].bucket)
                    if bounds is None:
                        continue
                    checked += 1
                    if (start and bounds[1] <= start) or (end and bounds[0] >= end):
                        outside.append(row.get(label))
            else:
                probe = self.interp.model_copy(deep=True)
                probe_label = "nx_window_date"

                if probe.is_aggregate:
                    continue
                probe.select.append(OutputColumn(column=w.column, label=probe_label))
                try:
                    compiled = interpretation_compile(probe, catalog=self.catalog, dialect=self.dialect)
                except CompileError:
                    continue
                probed, _ = self._run(compiled.sql, example)
                for row in probed:
                    day = _as_date(row.get(probe_label))
                    if day is None:
                        continue
                    checked += 1
                    if (start and day < start) or (end and day >= end):
                        outside.append(row.get(probe_label))
            if not checked:
                self._add(
                    f"dates lie in '{w.phrase or 'the window'}'",
                    "window",
                    True,
                    "no dated rows to check",
                    inconclusive=True,
                )
                continue
            span = f"from {start or 'the beginning'} until before {end or 'today'}"
            detail = f"{checked} dates checked, {span}"
            if outside:
                detail += f"; {len(outside)} outside, e.g. {outside[0]}"
            self._add(f"dates lie in '{w.phrase or 'the window'}'", "window", not outside, detail)

    def _order(self, example: dict, rows: list[dict], truncated: bool) -> None:
        if not self.interp.order_by or len(rows) < 2:
            return
        key = self.interp.order_by[0]
        if key.measure is not None:
            label = key.measure
        elif key.bucket:
            label = next(
                (g.label or g.bucket for g in self.interp.group_by if g.column.key() == key.column.key() and g.bucket),
                None,
            )
        else:
            label = self._output_columns().get(key.column.key())
        if not label or label not in rows[0]:
            return
        values = [_norm(r.get(label)) for r in rows]
        present = [v for v in values if v is not None]
        try:
            ordered = present == sorted(present, reverse=key.direction == "desc")
        except TypeError:
            ordered = [str(v) for v in present] == sorted(map(str, present), reverse=key.direction == "desc")
        self._add(
            f"rows come in the order of {label}",
            "order",
            ordered,
            f"{len(rows)} rows, {label} {'descending' if key.direction == 'desc' else 'ascending'}"
            + ("" if ordered else ": they are not in that order"),
        )

    def _negation(self, example: dict, rows: list[dict], truncated: bool) -> None:
        for x in self.interp.exists:
            if not x.negated:
                continue
            first = x.entities[0]
            outer_cols = [b for _, b in first.join.on]
            labels = self._output_columns()
            found = [labels.get((x.from_, c)) for c in outer_cols]
            if not rows or any(label is None or label not in rows[0] for label in found):
                self._add(
                    f"returned rows have no {first.object_name}",
                    "negation",
                    True,
                    "the related keys are not among the columns; the second formulation checks it",
                    inconclusive=True,
                )
                continue
            single = Interpretation.model_validate(
                {
                    "entities": [{"alias": first.alias, "object": first.object}]
                    + [e.model_dump(by_alias=True, exclude_none=True) for e in x.entities[1:]],
                    "measures": [{"id": "n", "func": "count"}],
                    "filters": [f.model_dump(exclude_none=True) for f in x.filters]
                    + [
                        {"column": {"entity": first.alias, "column": a}, "op": "eq", "param": f"nx_k{i}"}
                        for i, (a, _) in enumerate(first.join.on)
                    ],
                    "windows": [x.window.model_dump(exclude_none=True)] if x.window else [],
                    "parameters": [{"name": f"nx_k{i}"} for i in range(len(first.join.on))]
                    + [p.model_dump(exclude_none=True) for p in self.interp.parameters if _used_in(p.name, x)],
                }
            )
            compiled = interpretation_compile(single, catalog=self.catalog, dialect=self.dialect)
            bad = []
            for row in rows[:SAMPLE_ROWS]:
                values = {**{p: example[p] for p in example if single.parameter(p)}}
                values.update({f"nx_k{i}": row[label] for i, label in enumerate(found)})
                parsed, _ = parameters_parse(schema=compiled.parameters, values=values, from_text=False)
                got, _ = self.runner.rows(compiled.sql, self.bind(parsed))
                if got and int(_norm(got[0]["n"]) or 0) > 0:
                    bad.append(tuple(row[label] for label in found))
            detail = f"{min(len(rows), SAMPLE_ROWS)} rows checked one by one"
            if bad:
                detail += f"; {len(bad)} do have {first.object_name}, e.g. {bad[0]}"
            self._add(f"returned rows have no {first.object_name}", "negation", not bad, detail)

    def _aggregates(self, example: dict, rows: list[dict], truncated: bool) -> None:
        for m in self.interp.measures:
            if m.id not in (rows[0] if rows else {}):
                continue
            checked, wrong = 0, []
            for row in rows[:SAMPLE_ROWS]:
                check = measure_check(self.interp, catalog=self.catalog, dialect=self.dialect, measure_id=m.id, row=row)
                if check is None:
                    break
                sql, extra = check
                parsed = self._parsed(example)
                got, _ = self.runner.rows(sql, {**self.bind(parsed), **extra})
                checked += 1
                expected = got[0][m.id] if got else None
                if not _close(row.get(m.id), expected):
                    wrong.append((row.get(m.id), expected))
            if not checked:
                self._add(
                    f"{m.id} recomputed per row", "aggregate", True, "not recomputable from one fact", inconclusive=True
                )
                continue
            detail = f"{checked} rows recomputed from {m.column.column if m.column else 'the rows'} directly"
            if wrong:
                detail += f"; {len(wrong)} differ, e.g. {wrong[0][0]} instead of {wrong[0][1]}"
            self._add(f"{m.id} recomputed per row", "aggregate", not wrong, detail)

    def _lookup(self, example: dict, rows: list[dict], truncated: bool) -> None:
        for f in self.interp.filters:
            if not f.param or f.op != "eq" or self.interp.is_aggregate:
                continue
            entity = self.interp.entity(f.column.entity)
            info = self.catalog.get(entity.object)
            if info is None or not info.is_unique([f.column.column]) or entity.alias != self.interp.root.alias:
                continue
            spec = self.interp.parameter(f.param)
            required = spec is not None and spec.required and spec.default is None
            # With its related rows joined in (an order with its items), one key gives several rows.
            one = len(rows) == 1 or (bool(rows) and rows_repeat(self.interp, catalog=self.catalog, alias=entity.alias))
            self._add(
                f"a {f.column.column} returns exactly one row",
                "lookup",
                required and one,
                f"{f.param}={example.get(f.param)!r} returned {len(rows)} row(s)"
                + ("" if required else f"; {f.param} must be required, with no default"),
            )

    def _limit(self, example: dict, rows: list[dict], truncated: bool) -> None:
        limit = self.interp.limit
        if limit is None:
            return
        n = int(example.get(limit.param) or limit.n) if limit.param else limit.n
        unlimited = self.interp.model_copy(
            update={"limit": None, "parameters": [p for p in self.interp.parameters if p.name != limit.param]}
        )
        try:
            compiled = interpretation_compile(unlimited, catalog=self.catalog, dialect=self.dialect)
        except CompileError:
            return
        values = {k: v for k, v in example.items() if k != limit.param}
        parsed, _ = parameters_parse(schema=compiled.parameters, values=values, from_text=False)
        everything, _ = self.runner.rows(compiled.sql, self.bind(parsed))
        expected = min(n, len(everything))
        self._add(
            f"returns the {n} rows asked for",
            "limit",
            len(rows) == expected,
            f"{len(rows)} rows of {len(everything)} candidates (expected {expected})",
        )


def _used_in(name: str, x) -> bool:
    if any(f.param == name for f in x.filters):
        return True
    if x.window is not None:
        return any(b is not None and b.param == name for b in (x.window.start, x.window.end))
    return False


def _squash(sql: str) -> str:
    return " ".join((sql or "").split()).lower()


def _numeric_equal(a: Counter, b: Counter) -> bool:
    left, right = sorted(a.elements(), key=repr), sorted(b.elements(), key=repr)
    if len(left) != len(right):
        return False
    return all(all(_close(x, y) for x, y in zip(r1, r2, strict=True)) for r1, r2 in zip(left, right, strict=True))


def _message(exc: Exception) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]
