from django.apps import AppConfig


class EndpointsConfig(AppConfig):
    name = "endpoints"
    verbose_name = "Generated endpoints"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The platform's existing-apis MCP server (in mcpservers, below this app) lists deployed endpoints.
        from endpoints import cache
        from endpoints.models import GeneratedEndpoint
        from endpoints.selectors import endpoints_deployed_describe
        from mcpservers.audit import register_counter
        from mcpservers.platform import existing_apis_register

        existing_apis_register(endpoints_deployed_describe)
        register_counter(field="endpoint_id", model=GeneratedEndpoint, count="call_count", average="avg_latency_ms")
        cache.connect_signals()
