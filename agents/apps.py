from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_schedules(sender, **kwargs) -> None:
    """Every minute, finish or resume executions whose worker stopped responding."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="Recover stale executions",
        defaults={
            "func": "agents.tasks.recover_stale_executions_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from agents import signals
        from endpoints.signals import endpoint_approved, endpoint_rejected

        post_migrate.connect(ensure_schedules, sender=self)
        endpoint_approved.connect(signals.on_endpoint_approved, dispatch_uid="agents.learn_approved")
        endpoint_rejected.connect(signals.on_endpoint_rejected, dispatch_uid="agents.avoid_rejected")
