"""Health checks of the platform database and the channel layer, shared by /healthz and start-up."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    latency_ms: float

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail, "latency_ms": round(self.latency_ms, 1)}


def check_database() -> CheckResult:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the reason is logged, not returned
        logger.warning("database health check failed: %s", exc)
        connection.close()
        return CheckResult("database", False, "unreachable", (time.monotonic() - started) * 1000)
    return CheckResult("database", True, "ok", (time.monotonic() - started) * 1000)


async def check_channel_layer(timeout: float = 3.0) -> CheckResult:
    """Send a message to a fresh channel and read it back."""
    started = time.monotonic()
    layer = get_channel_layer()
    if layer is None:
        return CheckResult("channel_layer", False, "not configured", 0.0)
    token = uuid.uuid4().hex

    async def round_trip() -> dict:
        channel = await layer.new_channel(prefix="healthz.")
        # Listen first, then send until the ping comes back: a layer may drop a message that reaches
        # a channel nobody is receiving on yet (channels-postgres does).
        receiving = asyncio.ensure_future(layer.receive(channel))
        try:
            while True:
                await layer.send(channel, {"type": "healthz.ping", "token": token})
                done, _ = await asyncio.wait({receiving}, timeout=0.25)
                if done:
                    return receiving.result()
        finally:
            receiving.cancel()

    try:
        # The whole round trip is bounded: a layer that cannot even connect must not hang the probe.
        message = await asyncio.wait_for(round_trip(), timeout)
        ok = message.get("token") == token
    except Exception as exc:
        logger.warning("channel layer health check failed: %s", exc)
        return CheckResult("channel_layer", False, "unreachable", (time.monotonic() - started) * 1000)
    return CheckResult("channel_layer", ok, "ok" if ok else "wrong message", (time.monotonic() - started) * 1000)


async def run_checks() -> list[CheckResult]:
    database = await sync_to_async(check_database, thread_sensitive=True)()
    layer = await check_channel_layer()
    return [database, layer]
