"""Filters of the business pages: phase labels, durations, JSON, safe Markdown and call charts."""

from __future__ import annotations

import json
from datetime import timedelta

from django import template
from django.utils.duration import duration_string
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from agents.models import Phase
from agents.wording import PHASE_LABELS, plain_words
from nectar.markdown import markdown_html

register = template.Library()


# What each agent is called on the pages: plain words for business users (its steps: agents.wording).
AGENT_LABELS = {
    "ORCHESTRATOR": "Coordinator",
    "EXPLORER": "Researcher",
    "ARCHITECT": "Designer",
    "SECURITY": "Reviewer",
    "IMPLEMENTER": "Builder",
    "TESTER": "Checker",
    "DOCUMENTER": "Writer",
}


@register.filter
def phase_label(name: str) -> str:
    if name in PHASE_LABELS:
        return PHASE_LABELS[name]
    try:
        return Phase(name).label
    except ValueError:
        return name or ""


@register.filter
def agent_label(name: str) -> str:
    return AGENT_LABELS.get(str(name or "").upper(), str(name or "").lower().capitalize())


@register.filter
def duration(seconds) -> str:
    """Elapsed time as Django writes durations: 00:00:12, 00:03:04, 01:02:00."""
    if seconds in (None, ""):
        return ""
    return duration_string(timedelta(seconds=int(float(seconds))))


@register.filter
def seconds_short(value) -> str:
    if value in (None, ""):
        return ""
    value = float(value)
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


@register.filter
def as_json(value, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, default=str, ensure_ascii=False)


@register.filter
def compact_json(value) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))


@register.filter
def markdown(text: str) -> str:
    """Markdown to sanitized HTML (any HTML in the source is escaped)."""
    return markdown_html(text or "")


@register.filter
def lookup(mapping, key):
    try:
        return mapping.get(key) if hasattr(mapping, "get") else mapping[key]
    except (KeyError, IndexError, TypeError):
        return None


@register.simple_tag
def sparkline(counts, width: int = 140, height: int = 32) -> str:
    """An inline SVG bar chart of daily counts, with a title per bar."""
    counts = list(counts or [])
    if not counts:
        return ""
    top = max(counts) or 1
    gap = 2
    bar = (width - gap * (len(counts) - 1)) / len(counts)
    bars = []
    for i, n in enumerate(counts):
        h = max(1.0, (height - 2) * n / top) if n else 1.0
        x = i * (bar + gap)
        days_ago = len(counts) - 1 - i
        when = "today" if days_ago == 0 else f"{days_ago} day{'s' if days_ago != 1 else ''} ago"
        bars.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" class="{}"><title>{} call{} {}</title></rect>',
                f"{x:.1f}",
                f"{height - h:.1f}",
                f"{bar:.1f}",
                f"{h:.1f}",
                "bar" if n else "bar empty",
                n,
                "" if n == 1 else "s",
                when,
            )
        )
    total = sum(counts)
    return format_html(
        '<svg class="sparkline" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">'
        "{bars}</svg>",
        w=width,
        h=height,
        label=f"{total} calls in the last {len(counts)} days",
        bars=mark_safe("".join(bars)),  # noqa: S308 - every part was built with format_html
    )


@register.filter
def is_number(value) -> bool:
    from decimal import Decimal

    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


@register.filter
def plain_reason(text) -> str:
    """A run's status reason in the words of the pages (no internal component names)."""
    return plain_words(text)
