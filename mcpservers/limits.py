"""Rate limits shared by every replica, at almost no cost per call: leases on an atomic counter.

A limit is N calls per window (a fixed window: the minute, for "120/min"). The count of a
(bucket, window) lives in one place: Redis (INCRBY) when REDIS_URL is set, else one row of
RateCounter updated by a single atomic statement (INSERT ... ON CONFLICT DO UPDATE ...
RETURNING). A process does not ask for every call: it takes a lease of a few calls at once
(about 2% of the limit, at least one) and spends it locally; the counter only ever grants what
is left under the limit, so all replicas together never let more than N calls through a window.
Leases left unspent at the end of a window are lost, never carried over.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from roles.connectors.onloop import refuse_on_loop

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
LEASE_SHARE = 0.02


@dataclass(frozen=True)
class Rate:
    calls: int
    seconds: int

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour"}.get(self.seconds, f"{self.seconds} s")
        return f"{self.calls} calls per {unit}"


@functools.lru_cache(maxsize=64)  # the settings' few texts, read on every call
def parse_rate(text: str | None) -> Rate | None:
    """'120/min' -> Rate(120, 60); empty, '0' or 'none' -> no limit."""
    if not text or str(text).strip().lower() in ("0", "none", "off", "unlimited"):
        return None
    count, _, unit = str(text).strip().partition("/")
    unit = unit.strip().lower()
    seconds = _UNITS.get(unit) or _UNITS.get(unit.rstrip("s"))
    if seconds is None or not count.strip().isdigit():
        raise ValueError(f"A rate is N/second, N/minute or N/hour, not {text!r}.")
    return Rate(int(count), seconds)


class RateLimited(Exception):
    def __init__(self, rate: Rate, retry_after: int, what: str):
        super().__init__(f"Rate limit exceeded for {what} ({rate}); retry in {retry_after} s.")
        self.rate, self.retry_after, self.what = rate, retry_after, what
        self.message = str(self)


_leases: dict[tuple[str, int], int] = {}
_exhausted: set[tuple[str, int]] = set()
_lock = threading.Lock()


def _window(rate: Rate, now: float) -> tuple[int, int]:
    index = int(now // rate.seconds)
    return index, max(1, math.ceil((index + 1) * rate.seconds - now))


def take_local(bucket: str, rate: Rate) -> bool | None:
    """Spend one call of this process's lease: True if spent, False if used up, None if a lease is needed."""
    index, _ = _window(rate, time.time())
    with _lock:
        left = _leases.get((bucket, index), 0)
        if left > 0:
            _leases[(bucket, index)] = left - 1
            return True
        return False if (bucket, index) in _exhausted else None


def take(bucket: str, rate: Rate) -> tuple[bool, int]:
    """Spend one call (taking a new lease from the shared counter when needed): (allowed, retry_after)."""
    index, retry_after = _window(rate, time.time())
    local = take_local(bucket, rate)
    if local is not None:
        return local, retry_after
    refuse_on_loop("a lease of the shared rate counter")  # Redis or the platform database: not on the loop
    lease = max(1, int(rate.calls * LEASE_SHARE))
    total = _counter_add(bucket, index, lease, rate.seconds)
    granted = max(0, min(lease, rate.calls - (total - lease)))
    with _lock:
        for key in [k for k in _leases if k[1] < index]:
            del _leases[key]
        _exhausted.difference_update({k for k in _exhausted if k[1] < index})
        if granted < lease:
            _exhausted.add((bucket, index))  # the counter is at the limit: ask no more this window
        left = _leases.get((bucket, index), 0) + granted
        if left <= 0:
            return False, retry_after
        _leases[(bucket, index)] = left - 1
    return True, retry_after


def _counter_add(bucket: str, index: int, amount: int, seconds: int) -> int:
    """Add `amount` to the shared count of (bucket, window) atomically and return the new count."""
    if getattr(settings, "REDIS_URL", None):
        client = _redis()
        key = f"nectar:rate:{bucket}:{index}"
        pipe = client.pipeline()
        pipe.incrby(key, amount)
        pipe.expire(key, seconds * 2)
        total, _ = pipe.execute()
        return int(total)
    from django.db import connection

    from mcpservers.models import RateCounter

    table = connection.ops.quote_name(RateCounter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS c (bucket, window_index, count, expires_at) "
            "VALUES (%s, %s, %s, now() + make_interval(secs => %s)) "
            "ON CONFLICT (bucket, window_index) DO UPDATE SET count = c.count + EXCLUDED.count RETURNING c.count",
            [bucket, index, amount, seconds * 2],
        )
        return int(cursor.fetchone()[0])


_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis_client


def counters_forget_expired() -> int:
    """Delete counter rows of past windows (the health schedule runs it)."""
    from django.utils import timezone

    from mcpservers.models import RateCounter

    return RateCounter.objects.filter(expires_at__lt=timezone.now()).delete()[0]


# --- MCP --------------------------------------------------------------------------------------


def _mcp_rates() -> list[tuple[str, Rate | None]]:
    return [
        ("key", parse_rate(getattr(settings, "MCP_RATE_LIMIT_PER_KEY", ""))),
        ("org", parse_rate(getattr(settings, "MCP_RATE_LIMIT_PER_ORGANIZATION", ""))),
    ]


async def mcp_rate_check(served) -> None:
    """Refuse (McpAccessError 429) a request over its key's or its organization's limit."""
    from mcpservers.services import McpAccessError
    from mcpservers.workers import run_in_worker

    for scope, rate in _mcp_rates():
        ident = served.key_id if scope == "key" else served.organization_id
        if rate is None or not ident:
            continue
        bucket = f"mcp:{scope}:{ident}"
        local = take_local(bucket, rate)
        if local is True:
            continue
        allowed, retry_after = (
            (False, _window(rate, time.time())[1])
            if local is False
            else await run_in_worker(take, bucket=bucket, rate=rate, _tenant=served.organization_id)
        )
        if not allowed:
            what = "this API key" if scope == "key" else "this organization"
            limited = RateLimited(rate, retry_after, what)
            raise McpAccessError(429, limited.message, headers=[(b"retry-after", str(retry_after).encode())])
