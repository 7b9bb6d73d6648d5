from django.contrib import admin
from django.urls import include, path

from nectar import views

admin.site.site_header = "Nectar administration"
admin.site.site_title = "Nectar"
admin.site.index_title = "Databases, roles, MCP servers and agents"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/x/", include("endpoints.urls")),
    path("api/v1/", include("api.urls")),
    path("mcp-servers/", include("mcpservers.urls")),
    path("", include("web.urls")),
]
