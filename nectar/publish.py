"""Publishing on the channel layer from synchronous code (workers, sync views).

All sync publishers of a process share one long-lived event loop in a background thread, so the
channel layer's connections belong to a loop that outlives every call (async_to_sync would start
a new loop per call). A forked child (django-q workers, test servers) starts afresh: it inherits
neither that thread nor the parent's channel-layer instances.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from channels.layers import channel_layers

_publisher_loop: asyncio.AbstractEventLoop | None = None
_publisher_lock = threading.Lock()


def _forget_publisher_loop() -> None:
    # The child has the loop object but not its thread, and layer instances tied to the parent's loops.
    global _publisher_loop, _publisher_lock
    _publisher_loop = None
    _publisher_lock = threading.Lock()
    channel_layers.backends.clear()


os.register_at_fork(after_in_child=_forget_publisher_loop)


def _loop() -> asyncio.AbstractEventLoop:
    global _publisher_loop
    with _publisher_lock:
        if _publisher_loop is None or _publisher_loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="channel-layer-publisher", daemon=True).start()
            _publisher_loop = loop
        return _publisher_loop


def publish_from_sync(coroutine_function, *args, timeout: float = 10.0, **kwargs) -> Any:
    """Run a channel-layer coroutine from synchronous code on this process's publisher loop."""
    future = asyncio.run_coroutine_threadsafe(coroutine_function(*args, **kwargs), _loop())
    return future.result(timeout=timeout)
