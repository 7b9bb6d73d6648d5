"""Platform security policy for a design, applied whoever wrote it: the SQL check and personal data."""

from __future__ import annotations

from endpoints.interpretation import Interpretation
from endpoints.verification.lexicon import content_words, name_words, related
from roles.executor import ExecutorError, sql_check

# Columns that hold personal data: shown only when the requirement asks for them.
PERSONAL = frozenset(
    str.split(
        "email mail phone mobile cell fax ssn social birth birthday dob birthdate passport iban bic card cvv address "
        "street zip postcode postal salary income nationality gender ip"
    )
)
# Columns that are never returned.
SECRET = frozenset(str.split("password passwd secret token hash salt apikey credential pin otp"))


def _words(name: str) -> set[str]:
    return set(name_words(name))


def design_policy(*, requirement: str, interpretation: Interpretation, sql: str, role) -> list[str]:
    """Issues that stop a design: the SQL check (read-only, granted objects and columns), secrets, unasked PII."""
    issues: list[str] = []
    try:
        sql_check(role=role, sql=sql)
    except ExecutorError as exc:
        issues.append(f"the SQL check refused it ({exc.code}): {exc}")
    asked = [w.lower for w in content_words(requirement)]
    shown = [s.label or s.column.column for s in interpretation.select]
    shown += [s.column.column for s in interpretation.select]
    shown += [g.column.column for g in interpretation.group_by]
    for column in dict.fromkeys(shown):
        words = _words(column)
        if words & SECRET or "api_key" in column.lower():
            issues.append(f"it would return {column}, which looks like a secret")
        elif words & PERSONAL and not any(related(word, column) for word in asked):
            issues.append(f"it would return {column}, personal data the requirement does not ask for")
    return issues
