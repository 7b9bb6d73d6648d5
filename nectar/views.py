"""Platform-level views: health."""

from __future__ import annotations

from django.http import JsonResponse

from nectar.health import run_checks


async def healthz(request):
    """Report database and channel-layer health; 503 when either is down."""
    results = await run_checks()
    healthy = all(result.ok for result in results)
    body = {"status": "ok" if healthy else "unavailable", "checks": {r.name: r.as_dict() for r in results}}
    return JsonResponse(body, status=200 if healthy else 503)
