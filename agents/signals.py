"""Learning from what people decide about generated endpoints: approved designs are learned, rejected ones avoided."""

from __future__ import annotations

import logging

from agents.models import AgentExecution
from agents.orchestrator import success_results
from endpoints.interpretation import design_fingerprint
from learning.services import design_reject, learn_from_success

logger = logging.getLogger(__name__)


def _root(execution: AgentExecution | None) -> AgentExecution | None:
    while execution is not None and execution.parent_id is not None:
        execution = execution.parent
    return execution


def learnable(endpoint) -> bool:
    """Only a design whose meaning tests were derived and all passed becomes a pattern to reuse."""
    tests = (endpoint.verification or {}).get("meaning_tests") or {}
    return bool(tests.get("passed")) and int(tests.get("derived") or 0) > 0


def on_endpoint_approved(sender, *, endpoint, user=None, **kwargs) -> None:
    execution = _root(endpoint.source_execution)
    if execution is None or not learnable(endpoint):
        return
    try:
        learn_from_success(execution=execution, results=success_results(execution=execution, endpoint=endpoint))
    except Exception:  # learning must never undo a person's approval
        logger.exception("could not learn from approved endpoint %s", endpoint.pk)


def on_endpoint_rejected(sender, *, endpoint, user=None, reason: str = "", **kwargs) -> None:
    execution = _root(endpoint.source_execution)
    if execution is None or not endpoint.interpretation:
        return
    try:
        design_reject(
            execution=execution,
            fingerprint=design_fingerprint(endpoint.interpretation),
            reason=reason or "rejected",
            requirement=(execution.result or {}).get("requirement") or execution.business_requirement,
            sql=endpoint.sql,
            interpretation=endpoint.interpretation,
        )
    except Exception:
        logger.exception("could not record the rejected design of endpoint %s", endpoint.pk)
