"""What the permission-checked executor returns and raises, shared by the executor and the SQL checker."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field

ERROR_CODES = (
    "unknown_object",
    "forbidden",
    "unknown_column",
    "invalid_argument",
    "invalid_sql",
    "constraint_violation",
    "timeout",
    "database_unavailable",
    "database_busy",
    "database_error",
)


class ExecutorError(Exception):
    """A refused or failed data access; `code` says which kind, `message` is safe to show."""

    def __init__(self, code: str, message: str, *, field: str | None = None, retryable: bool = False):
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "field": self.field, "retryable": self.retryable}


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[dict]
    row_count: int
    total: int | None
    truncated: bool


@dataclass(frozen=True)
class WriteResult:
    row_count: int
    rows: list[dict]


@dataclass(frozen=True)
class CheckedSQL:
    sql: str
    bind_names: tuple
    objects: tuple  # ((schema, name), ...)
    # Values Nectar binds itself (row filters, literals): never shown to callers, always sent.
    internal_params: dict = dc_field(default_factory=dict, compare=False, repr=False)
