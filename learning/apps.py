from django.apps import AppConfig
from django.db.models.signals import post_migrate

IMPROVEMENT_SCHEDULE_NAME = "learning: daily continuous improvement"
IMPROVEMENT_TASK = "learning.tasks.improvement_run_task"


def ensure_improvement_schedule(**kwargs) -> None:
    """Create the daily improvement schedule once; later migrations leave an edited one alone."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name=IMPROVEMENT_SCHEDULE_NAME,
        defaults={"func": IMPROVEMENT_TASK, "schedule_type": Schedule.DAILY, "repeats": -1},
    )


class LearningConfig(AppConfig):
    name = "learning"
    verbose_name = "Learning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(ensure_improvement_schedule, sender=self, dispatch_uid="learning-improvement-schedule")
