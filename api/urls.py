"""/api/v1/: the integration API, its OpenAPI schema and the Swagger UI and ReDoc pages."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api.views.auth import MeView, PersonalTokenDetailView, PersonalTokenListView, TokenView
from api.views.endpoints import EndpointViewSet
from api.views.executions import ExecutionViewSet
from api.views.mcp import McpInstanceViewSet
from api.views.memories import MemoryViewSet
from api.views.metrics import MetricsView
from api.views.roles import RoleApiKeyViewSet, RoleViewSet
from api.views.services import ServiceViewSet

app_name = "api"

router = DefaultRouter()
router.include_root_view = False
router.register("services", ServiceViewSet, basename="service")
router.register("roles", RoleViewSet, basename="role")
router.register(
    r"roles/(?P<role_pk>[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})/keys",
    RoleApiKeyViewSet,
    basename="role-key",
)
router.register("mcp-servers", McpInstanceViewSet, basename="mcp-server")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("endpoints", EndpointViewSet, basename="endpoint")
router.register("memories", MemoryViewSet, basename="memory")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="token"),
    path("auth/tokens/", PersonalTokenListView.as_view(), name="tokens"),
    path("auth/tokens/<uuid:token_id>/", PersonalTokenDetailView.as_view(), name="token-detail"),
    path("me/", MeView.as_view(), name="me"),
    path("metrics/", MetricsView.as_view(), name="metrics"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
    *router.urls,
]
