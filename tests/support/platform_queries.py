"""Platform queries made by any thread of the test process (the ASGI app's worker threads included)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from django.db.backends import utils

# The audit flusher writes batches off the request path; its writes are not a request's queries.
BACKGROUND_THREADS = {"nectar-audit"}


@contextmanager
def platform_queries(monkeypatch):
    """A list that receives the SQL of every platform query run while the block runs."""
    seen: list[str] = []
    lock = threading.Lock()
    original = utils.CursorWrapper._execute

    def counted(self, sql, params, *ignored_wrapper_args):
        if threading.current_thread().name not in BACKGROUND_THREADS:
            with lock:
                seen.append(sql)
        return original(self, sql, params, *ignored_wrapper_args)

    monkeypatch.setattr(utils.CursorWrapper, "_execute", counted)
    try:
        yield seen
    finally:
        monkeypatch.setattr(utils.CursorWrapper, "_execute", original)
