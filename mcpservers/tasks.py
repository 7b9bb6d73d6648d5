"""Background tasks of the MCP servers (django-q2)."""

from __future__ import annotations

from mcpservers.services import health_check_all as _health_check_all


def health_check_all() -> dict:
    """Health-check every ACTIVE or ERROR instance: ERROR when its database is unreachable, ACTIVE when back."""
    return _health_check_all()
