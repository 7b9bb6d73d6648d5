"""The PostgreSQL channel layer on short-lived event loops: a loop always finishes closing."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from channels.layers import get_channel_layer

from nectar.channel_layer import LoopClosedError

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])


def _run_in_thread(coroutine_function) -> threading.Thread:
    """asyncio.run in a daemon thread (a hang there cannot keep the test process alive)."""
    thread = threading.Thread(target=asyncio.run, args=(coroutine_function(),), daemon=True)
    thread.start()
    thread.join(60)
    return thread


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.02, 0.05])
def test_a_loop_closes_when_a_pool_being_opened_is_abandoned(delay):
    """A receive cancelled while its pool connects (a consumer that went away) leaves no pool working.

    psycopg_pool's workers swallow a cancellation that reaches them in the middle of a task, so a
    pool left opening kept asyncio.run's final cancellation waiting for ever.
    """
    layer = get_channel_layer()

    async def scenario():
        opening = asyncio.create_task(layer.django_db.get_db_pool(layer.db_params))
        await asyncio.sleep(delay)
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await opening

    thread = _run_in_thread(scenario)
    assert not thread.is_alive(), "the event loop never finished closing"


def test_after_close_loop_the_loop_gets_no_new_pool_or_listener():
    layer = get_channel_layer()
    seen: list[str] = []

    async def scenario():
        await layer.listening()
        await layer.close_loop()
        for attempt in (layer.listening(), layer.django_db.get_db_pool(layer.db_params)):
            try:
                await attempt
            except LoopClosedError:
                seen.append("refused")

    thread = _run_in_thread(scenario)
    assert not thread.is_alive(), "the event loop never finished closing"
    assert seen == ["refused", "refused"]


def test_a_message_sent_on_one_loop_is_received_on_another():
    """The layer still does its job: the per-loop listener of a receiving loop gets what another loop sends."""
    layer = get_channel_layer()
    received: list[dict] = []

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add("probe", channel)
        await layer.listening()
        sender = threading.Thread(target=asyncio.run, args=(_send(layer),))
        sender.start()
        received.append(await asyncio.wait_for(layer.receive(channel), 20))
        await asyncio.get_running_loop().run_in_executor(None, sender.join)
        await layer.group_discard("probe", channel)
        await layer.close_loop()

    thread = _run_in_thread(scenario)
    assert not thread.is_alive(), "the event loop never finished closing"
    assert received == [{"type": "probe.message", "text": "hello"}]


async def _send(layer) -> None:
    await layer.group_send("probe", {"type": "probe.message", "text": "hello"})
    await layer.close_loop()
