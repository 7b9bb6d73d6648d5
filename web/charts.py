"""Server-rendered SVG charts of a result: a line chart for a time series, bars for a measure by group.

No JavaScript and nothing to build: the chart is part of the HTML, with a title per point for screen
readers and hover. A result that is neither (no time or group column beside a number) gets no chart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 56
PALETTE = ["#d97706", "#2563eb", "#15803d", "#b42318", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f"]
MAX_SERIES = 8
MAX_BARS = 40
_MONTH = re.compile(r"^\d{4}-\d{2}$")


@dataclass(frozen=True)
class Chart:
    kind: str  # "line" or "bar"
    x: str
    measure: str
    series: dict[str, list[tuple[object, float]]]

    def render(self) -> SafeString:
        return _line(self) if self.kind == "line" else _bars(self)


def _is_number(value) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_identifier(column: str) -> bool:
    """customer_id, id, order_no: numbers that name rows rather than measure anything."""
    name = column.lower()
    return name == "id" or name.endswith(("_id", "_no", "_number", "_key")) or name in ("year", "month")


def _when(value):
    """A date-like value as a sortable datetime, else None."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        if _MONTH.match(text):
            return datetime(int(text[:4]), int(text[5:7]), 1)
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if len(text) >= 10 else None
        except ValueError:
            return None
    return None


def chart_for_result(columns: list[str], rows: list[dict]) -> Chart | None:
    """The chart a result calls for, or None."""
    if len(rows) < 2 or len(columns) < 2:
        return None
    present = {c: [r.get(c) for r in rows if r.get(c) is not None] for c in columns}
    numeric = [c for c in columns if present[c] and all(_is_number(v) for v in present[c]) and not _is_identifier(c)]
    time = next((c for c in columns if c not in numeric and present[c] and all(_when(v) for v in present[c])), None)
    groups = [c for c in columns if c not in numeric and c != time and present[c]]
    if not numeric:
        return None
    if time is not None:
        measure = numeric[0]
        group = next((g for g in groups if len({str(v) for v in present[g]}) <= MAX_SERIES), None)
        series: dict[str, list] = {}
        if group is not None:
            for row in rows:
                if row.get(time) is not None and row.get(measure) is not None:
                    series.setdefault(str(row.get(group)), []).append((row[time], float(row[measure])))
        else:
            for name in numeric[:4]:
                series[name] = [
                    (r[time], float(r[name])) for r in rows if r.get(time) is not None and r.get(name) is not None
                ]
        for points in series.values():
            points.sort(key=lambda p: _when(p[0]))
        return Chart("line", time, measure if group is not None else ", ".join(numeric[:4]), series)
    if groups and len(rows) <= MAX_BARS:
        label, measure = groups[0], numeric[0]
        points = [(str(r.get(label)), float(r[measure])) for r in rows if r.get(measure) is not None]
        return Chart("bar", label, measure, {measure: points})
    return None


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high == low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _n(value: float) -> str:
    return f"{value:.1f}"


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"


def _frame(ticks: list[float], y) -> SafeString:
    lines = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
        '<text x="{}" y="{}" class="tick" text-anchor="end">{}</text>',
        ((LEFT, WIDTH - RIGHT, _n(y(t)), _n(y(t)), LEFT - 6, _n(y(t) + 4), _fmt(t)) for t in ticks),
    )
    return lines


def _svg(chart: Chart, body: SafeString, legend: SafeString) -> SafeString:
    label = f"{'Line' if chart.kind == 'line' else 'Bar'} chart of {chart.measure} by {chart.x}"
    return format_html(
        '<figure class="result-chart" data-chart="{}"><svg viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'preserveAspectRatio="xMidYMid meet">{}</svg>{}<figcaption class="small muted">{}</figcaption></figure>',
        chart.kind,
        WIDTH,
        HEIGHT,
        label,
        body,
        legend,
        label,
    )


def _line(chart: Chart) -> SafeString:
    xs = sorted({_when(x) for points in chart.series.values() for x, _ in points})
    values = [v for points in chart.series.values() for _, v in points]
    ticks = _nice_ticks(min(0.0, min(values)), max(values))
    low, high = ticks[0], ticks[-1]
    first, last = xs[0].timestamp(), xs[-1].timestamp()
    span = (last - first) or 1.0

    def x(when) -> float:
        return LEFT + (_when(when).timestamp() - first) / span * (WIDTH - LEFT - RIGHT)

    def y(value: float) -> float:
        return TOP + (high - value) / ((high - low) or 1) * (HEIGHT - TOP - BOTTOM)

    parts = [_frame(ticks, y)]
    every = max(1, math.ceil(len(xs) / 8))
    labels = {_when(p[0]): p[0] for points in chart.series.values() for p in points}
    parts.append(
        format_html_join(
            "",
            '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>',
            ((_n(x(w)), HEIGHT - BOTTOM + 18, str(labels[w])[:10]) for w in xs[::every]),
        )
    )
    legend = []
    for index, (name, points) in enumerate(list(chart.series.items())[:MAX_SERIES]):
        color = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(w):.1f},{y(v):.1f}" for i, (w, v) in enumerate(points))
        parts.append(format_html('<path d="{}" fill="none" stroke="{}" stroke-width="2"/>', path, color))
        parts.append(
            format_html_join(
                "",
                '<circle cx="{}" cy="{}" r="3" fill="{}"><title>{}: {} = {}</title></circle>',
                ((_n(x(w)), _n(y(v)), color, str(w)[:19], name, _fmt(v)) for w, v in points),
            )
        )
        legend.append(format_html('<li><span class="swatch" style="background:{}"></span>{}</li>', color, name))
    body = mark_safe("".join(str(p) for p in parts))  # noqa: S308 - every part was built with format_html
    legend_html = format_html('<ul class="legend small">{}</ul>', mark_safe("".join(str(i) for i in legend)))  # noqa: S308
    return _svg(chart, body, legend_html)


def _bars(chart: Chart) -> SafeString:
    points = next(iter(chart.series.values()))
    values = [v for _, v in points]
    ticks = _nice_ticks(min(0.0, min(values)), max(values))
    low, high = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return TOP + (high - value) / ((high - low) or 1) * (HEIGHT - TOP - BOTTOM)

    slot = (WIDTH - LEFT - RIGHT) / len(points)
    bar = max(2.0, slot * 0.7)
    zero = y(0.0)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" class="tick" text-anchor="end" transform="rotate(-35 {} {})">{}</text>',
        (
            (
                _n(LEFT + i * slot + (slot - bar) / 2),
                _n(min(y(v), zero)),
                _n(bar),
                _n(abs(zero - y(v))),
                PALETTE[0],
                label,
                _fmt(v),
                _n(LEFT + i * slot + slot / 2),
                HEIGHT - BOTTOM + 14,
                _n(LEFT + i * slot + slot / 2),
                HEIGHT - BOTTOM + 14,
                label[:14],
            )
            for i, (label, v) in enumerate(points)
        ),
    )
    body = format_html("{}{}", _frame(ticks, y), rects)
    return _svg(chart, body, mark_safe(""))
