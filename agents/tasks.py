"""django-q2 tasks: run one execution (by id, idempotently) and recover runs whose worker died."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from agents.models import AgentExecution
from agents.orchestrator import execution_run
from agents.services import execution_claim, executions_recover_stale

logger = logging.getLogger(__name__)


class Heartbeat:
    """Record every few seconds that this worker is alive and still running the execution."""

    def __init__(self, execution_id, interval: float | None = None):
        self.execution_id = execution_id
        self.interval = interval or settings.EXECUTION_HEARTBEAT_SECONDS
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{execution_id}", daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                AgentExecution.objects.filter(pk=self.execution_id, status__in=["RUNNING", "LEARNING"]).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:
            logger.exception("heartbeat of execution %s stopped", self.execution_id)
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=5)


def run_execution_task(execution_id: str) -> str:
    """Run the pipeline of one execution; a duplicate delivery finds nothing to claim and returns."""

    close_old_connections()
    execution = execution_claim(execution_id=execution_id)
    if execution is None:
        return "skipped: already running elsewhere or finished"
    with Heartbeat(execution.pk):
        execution_run(execution=execution)
    execution.refresh_from_db()
    return execution.status


def recover_stale_executions_task() -> dict:
    return executions_recover_stale()
