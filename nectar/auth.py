"""Login throttling (django-axes) for the HTML login, the admin login and the token login.

Failures are counted per account and per address; past NECTAR_LOGIN_FAILURE_LIMIT either is
locked out for NECTAR_LOGIN_LOCKOUT_MINUTES with a clear message (429). Calls of authenticate()
without a request (management commands, the test client's login()) are not web logins: they are
not throttled.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape


def _lockout_minutes() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return max(1, int(cooloff.total_seconds() // 60)) if cooloff else 0


LOCKOUT_MESSAGE = (
    "Too many failed sign-ins for this account or from this address. Wait a few minutes before trying again, "
    "or ask an administrator to unlock the account."
)


class ThrottledLoginBackend(AxesStandaloneBackend):
    """AxesStandaloneBackend for web logins; authenticate() without a request is not one."""

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(request, credentials=None, *args, **kwargs):
    """The answer to a locked-out login: 429 with the message, as JSON for the API, else as a page."""
    minutes = _lockout_minutes()
    message = f"{LOCKOUT_MESSAGE} The lock lifts after {minutes} minutes." if minutes else LOCKOUT_MESSAGE
    if request.path.startswith("/api/"):
        return JsonResponse({"errors": [{"field": None, "message": message, "code": "locked_out"}]}, status=429)
    return HttpResponse(
        "<!doctype html><title>Sign-in locked</title><h1>Sign-in locked</h1>"
        f"<p>{escape(message)}</p><p><a href='/accounts/login/'>Back to sign in</a></p>",
        status=429,
        content_type="text/html; charset=utf-8",
    )
