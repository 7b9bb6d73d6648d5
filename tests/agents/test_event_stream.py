"""Execution events over the WebSocket: replay from a sequence number, then live, with no gap or duplicate."""

from __future__ import annotations

import contextlib

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from agents.consumers import ExecutionEventsConsumer
from agents.events import event_append, events_since
from agents.models import AgentExecution

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])


@pytest.fixture
def execution(org, owner):
    execution = AgentExecution.objects.create(organization=org, user=owner, business_requirement="list customers")
    for n in range(1, 6):
        event_append(execution=execution, kind="thought", agent="explorer", payload={"text": f"step {n}"})
    return execution


def _run(scenario) -> None:
    """Run a WebSocket scenario in its own loop, releasing the channel layer's hold on it at the end."""

    async def run():
        try:
            await scenario()
        finally:
            close = getattr(get_channel_layer(), "close_loop", None)
            if close is not None:
                await close()

    async_to_sync(run)()


def _communicator(execution, user, after: int | None = None):
    path = f"/ws/executions/{execution.pk}/" + (f"?after={after}" if after is not None else "")
    communicator = WebsocketCommunicator(ExecutionEventsConsumer.as_asgi(), path)
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"execution_id": execution.pk}}
    communicator.scope["query_string"] = path.partition("?")[2].encode()
    return communicator


async def _receive_seqs(communicator, count: int) -> list[int]:
    return [(await communicator.receive_json_from(timeout=10))["event"]["seq"] for _ in range(count)]


def test_a_subscriber_replays_from_its_last_sequence_then_receives_live_events(execution, owner):
    async def scenario():
        communicator = _communicator(execution, owner, after=2)
        connected, _ = await communicator.connect()
        assert connected
        assert await _receive_seqs(communicator, 3) == [3, 4, 5]
        await sync_to_async(event_append)(execution=execution, kind="phase", payload={"phase": "architecture"})
        assert await _receive_seqs(communicator, 1) == [6]
        assert await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()

    _run(scenario)


def test_reconnecting_with_the_last_seen_sequence_misses_nothing_and_repeats_nothing(execution, owner):
    async def scenario():
        first = _communicator(execution, owner)
        await first.connect()
        seen = await _receive_seqs(first, 5)
        await first.disconnect()
        # Events written while nobody listens are picked up on reconnect.
        for n in range(2):
            await sync_to_async(event_append)(execution=execution, kind="thought", payload={"text": f"offline {n}"})
        second = _communicator(execution, owner, after=seen[-1])
        await second.connect()
        assert await _receive_seqs(second, 2) == [6, 7]
        assert await second.receive_nothing(timeout=0.5)
        await second.disconnect()

    _run(scenario)


def test_an_outsider_is_refused(execution, outsider):
    async def scenario():
        communicator = _communicator(execution, outsider)
        connected, code = await communicator.connect()
        assert not connected
        assert code == 4404
        # The client goes away, as a browser does after a refusal: the consumer ends inside the test's
        # loop instead of being cancelled when the loop is closed, half-way into the channel layer.
        await communicator.disconnect()

    _run(scenario)


def test_events_since_returns_the_stored_tail_in_order(execution):
    assert [e.seq for e in events_since(execution=execution, after_seq=3)] == [4, 5]


def test_an_event_is_published_once_committed_and_never_when_rolled_back(execution, monkeypatch):
    published: list[int] = []
    monkeypatch.setattr("agents.events.event_publish", lambda *, execution_id, event: published.append(event.seq))

    with transaction.atomic():
        event_append(execution=execution, kind="thought", payload={"text": "kept"})
        assert published == [], "published before its transaction committed"
    assert published == [6]

    with contextlib.suppress(RuntimeError), transaction.atomic():
        event_append(execution=execution, kind="thought", payload={"text": "rolled back"})
        raise RuntimeError("the caller fails")
    assert published == [6]
    assert [e.payload["text"] for e in events_since(execution=execution, after_seq=5)] == ["kept"]
