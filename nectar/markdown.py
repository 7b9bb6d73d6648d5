"""Markdown rendered to HTML on the server and sanitized: docs and memories are shown as pages, not raw text."""

from __future__ import annotations

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

# "js-default": raw HTML in the source is escaped, links are validated, tables are on.
_parser = MarkdownIt("js-default")
_TAGS = {
    "a", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre",
    "strong", "table", "tbody", "td", "th", "thead", "tr", "ul", "del", "s",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "th": {"style"}, "td": {"style"}}


def markdown_html(text: str) -> SafeString:
    """Markdown to HTML, then an allow-list sanitizer (nh3) over the result: safe to put in a page."""
    html = _parser.render(text or "")
    cleaned = nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(cleaned)  # noqa: S308 - sanitized by nh3 just above
