"""Live execution events over WebSocket, replayed from the stored log with no gap and no duplicate."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404
from django.template.loader import render_to_string

from agents.events import event_serialize, events_since, execution_group
from agents.selectors import execution_get_for_user


class ExecutionEventsConsumer(AsyncJsonWebsocketConsumer):
    """Connect to /ws/executions/<id>/?after=<seq>[&format=html].

    The stored events after `after` are sent first, then live ones. Every event carries its
    sequence number; the consumer never sends one twice and fills any gap from the database,
    so a reconnecting client that passes the last number it saw misses nothing.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        execution_id = self.scope["url_route"]["kwargs"]["execution_id"]
        try:
            self.execution = await database_sync_to_async(execution_get_for_user)(user=user, execution_id=execution_id)
        except Http404:
            await self.close(code=4404)
            return
        query = dict(
            part.split("=", 1) for part in self.scope.get("query_string", b"").decode().split("&") if "=" in part
        )
        try:
            self.last_seq = max(0, int(query.get("after", "0")))
        except ValueError:
            self.last_seq = 0
        self.html = query.get("format") == "html"
        self.group = execution_group(self.execution.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        listening = getattr(self.channel_layer, "listening", None)
        if listening is not None:
            await listening()  # replay only once live events can arrive: none falls in between
        await self.accept()
        await self._catch_up()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def _catch_up(self) -> None:
        events = await database_sync_to_async(
            lambda: [event_serialize(e) for e in events_since(execution=self.execution, after_seq=self.last_seq)]
        )()
        for event in events:
            await self._deliver(event)

    async def _deliver(self, event: dict) -> None:
        if event["seq"] <= self.last_seq:
            return
        self.last_seq = event["seq"]
        if self.html:
            await self.send(text_data=await database_sync_to_async(render_event_html)(event))
        else:
            await self.send_json({"type": "event", "event": event})

    async def execution_event(self, message):
        event = message["event"]
        if event["seq"] > self.last_seq + 1:
            await self._catch_up()  # a gap: fetch what was missed, in order
        await self._deliver(event)


def render_event_html(event: dict) -> str:
    return render_to_string("agents/_event_oob.html", {"event": event})
