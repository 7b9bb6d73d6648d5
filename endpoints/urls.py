from django.urls import path, register_converter

from endpoints import views


class VersionConverter:
    regex = "v[0-9]{1,9}"

    def to_python(self, value: str) -> int:
        return int(value[1:])

    def to_url(self, value: int) -> str:
        return f"v{value}"


register_converter(VersionConverter, "ver")

app_name = "endpoints"

urlpatterns = [
    # "-" can never be an organization slug, so these never shadow a live endpoint.
    path("-/docs/<uuid:endpoint_id>", views.endpoint_docs_page, name="docs"),
    path("-/export/<uuid:endpoint_id>", views.endpoint_export_download, name="export"),
    path("-/swagger/<slug:org_slug>/", views.OrganizationSwaggerView.as_view(), name="openapi-ui"),
    # A slug never holds a dot, so this never shadows a live endpoint.
    path("<slug:org_slug>/openapi.json", views.OrganizationOpenAPIView.as_view(), name="openapi"),
    path("<slug:org_slug>/<slug:slug>", views.GeneratedEndpointView.as_view(), name="live"),
    path("<slug:org_slug>/<slug:slug>/<ver:version>", views.GeneratedEndpointView.as_view(), name="live-version"),
]
