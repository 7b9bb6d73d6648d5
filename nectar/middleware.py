"""Requests to the pages and admin whose query string or form body holds text Nectar cannot take.

Django decodes query strings and form bodies with errors="replace", so bytes that are not UTF-8
would silently become U+FFFD, and a NUL would reach the database (e.g. an admin search) and fail
there. This answers 400 with the field named instead, and logs it. The REST API and the
generated endpoints (under /api/) check their own input with the same helper and answer in
their own error format (and audit log).
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.utils.html import escape

from nectar.text import query_string_problem

logger = logging.getLogger("nectar.security")

FORM_TYPE = "application/x-www-form-urlencoded"


class BadTextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            found = query_string_problem(request.META.get("QUERY_STRING", ""))
            if found is None and request.method == "POST" and request.content_type == FORM_TYPE:
                found = query_string_problem(request.body)
            if found is not None:
                field, message = found
                logger.warning("refused text input on %s %s: %s: %s", request.method, request.path, field, message)
                return HttpResponse(
                    f"<!doctype html><title>Bad request</title><h1>Bad request</h1>"
                    f"<p>{escape(field)}: {escape(message)}</p>",
                    status=400,
                    content_type="text/html; charset=utf-8",
                )
        return self.get_response(request)
