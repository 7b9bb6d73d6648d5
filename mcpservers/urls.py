from django.urls import path

from mcpservers import views

app_name = "mcpservers"

urlpatterns = [
    path("<uuid:instance_id>/connect/", views.instance_client_config, name="client-config"),
]
