from django.apps import AppConfig


class McpServersConfig(AppConfig):
    name = "mcpservers"
    verbose_name = "MCP servers"
    default_auto_field = "django.db.models.BigAutoField"
