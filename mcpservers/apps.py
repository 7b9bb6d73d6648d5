from django.apps import AppConfig
from django.db.models.signals import post_migrate

HEALTH_SCHEDULE_NAME = "mcpservers.health_check_all"


def ensure_health_schedule(**kwargs) -> None:
    """Create (or update) the django-q2 schedule of the MCP health check, idempotently."""
    from django.conf import settings
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=HEALTH_SCHEDULE_NAME,
        defaults={
            "func": "mcpservers.tasks.health_check_all",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.MCP_HEALTH_INTERVAL_MINUTES,
            "repeats": -1,
        },
    )


class McpServersConfig(AppConfig):
    name = "mcpservers"
    verbose_name = "MCP servers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcpservers import signals  # noqa: F401

        post_migrate.connect(ensure_health_schedule, sender=self, dispatch_uid="mcpservers.health_schedule")
