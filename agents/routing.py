from django.urls import path

from agents.consumers import ExecutionEventsConsumer

websocket_urlpatterns = [
    path("ws/executions/<uuid:execution_id>/", ExecutionEventsConsumer.as_asgi()),
]
