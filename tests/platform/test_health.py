"""/healthz reports the database and the channel layer, and says so when either is down."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.mark.django_db(transaction=True)
def test_healthz_is_ok_when_database_and_channel_layer_are_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_channel_layer_is_down(client, settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1"]}}
    }
    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["channel_layer"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_when_the_database_is_down(client):
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == {
        "ok": False,
        "detail": "unreachable",
        "latency_ms": body["checks"]["database"]["latency_ms"],
    }


@pytest.mark.django_db(transaction=True)
def test_healthz_with_redis_channel_layer(client, settings):
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/3"]},
        }
    }
    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_channel_layer_probe_answers_again_and_again_in_one_event_loop():
    """As under daphne, where every request shares the server's loop and the layer's listener."""
    from asgiref.sync import async_to_sync

    from nectar.health import check_channel_layer

    async def probes():
        return [await check_channel_layer(timeout=5) for _ in range(3)]

    assert [result.ok for result in async_to_sync(probes)()] == [True, True, True]
