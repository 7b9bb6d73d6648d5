"""Role permissions: the spec's list of grants, validated against the introspected schema.

Each entry: {"objectName", "schema", "path": "/table/N" | "/view/N" | "/proc/N", "actions": [...],
"columns": {"allow": [...]} | {"deny": [...]} (optional), "rowFilter": {"col": value} (optional)}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field

from roles.introspection import schema_find_object, service_schema

logger = logging.getLogger(__name__)

ACTIONS_BY_KIND = {
    "table": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "view": ("SELECT",),
    "procedure": ("EXECUTE",),
    "function": ("EXECUTE",),
}
PATH_KINDS = {"table": ("table",), "view": ("view",), "proc": ("procedure", "function")}
_PATH_RE = re.compile(r"^/(table|view|proc)/(.+)$")


@dataclass(frozen=True)
class Grant:
    schema: str
    object_name: str
    kind: str
    actions: frozenset
    allowed_columns: tuple | None  # None: every column
    row_filter: dict = field(default_factory=dict)
    object: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def column_names(self) -> tuple:
        return tuple(c["name"] for c in self.object.get("columns", []))

    @property
    def readable_columns(self) -> tuple:
        return self.allowed_columns if self.allowed_columns is not None else self.column_names

    def column(self, name: str) -> dict | None:
        for col in self.object.get("columns", []):
            if col["name"] == name:
                return col
        return None

    def __getstate__(self) -> dict:
        # What a process keeps with a grant (roles.executor's statements) stays in that process.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_nectar_")}


def _error(index, field_name, message) -> dict:
    return {"index": index, "field": field_name, "message": message}


def _check_entry(schema: dict, index: int, entry) -> tuple[list[dict], Grant | None]:
    errors: list[dict] = []
    if not isinstance(entry, dict):
        return [_error(index, None, "Each permission must be an object.")], None
    name = entry.get("objectName")
    if not isinstance(name, str) or not name:
        return [_error(index, "objectName", "objectName is required and must be a non-empty string.")], None
    schema_name = entry.get("schema")
    if schema_name is not None and (not isinstance(schema_name, str) or not schema_name):
        return [_error(index, "schema", "schema must be a non-empty string when given.")], None
    path = entry.get("path")
    match = _PATH_RE.match(path) if isinstance(path, str) else None
    if not match:
        return [_error(index, "path", 'path must be "/table/NAME", "/view/NAME" or "/proc/NAME".')], None
    if match.group(2) != name:
        errors.append(_error(index, "path", f"path names {match.group(2)!r} but objectName is {name!r}."))
    obj = schema_find_object(schema, name, schema_name)
    where = f"{schema_name}.{name}" if schema_name else name
    if obj is None:
        return [*errors, _error(index, "objectName", f"No object {where!r} in the database schema.")], None
    if obj["kind"] not in PATH_KINDS[match.group(1)]:
        errors.append(_error(index, "path", f"{where!r} is a {obj['kind']}, not a {match.group(1)}."))
    actions = entry.get("actions")
    valid_actions = ACTIONS_BY_KIND[obj["kind"]]
    if not isinstance(actions, list) or not actions:
        errors.append(_error(index, "actions", f"actions must be a non-empty list of {', '.join(valid_actions)}."))
        actions = []
    for action in actions:
        if action not in valid_actions:
            errors.append(
                _error(
                    index, "actions", f"{action!r} is not valid for a {obj['kind']}; use {', '.join(valid_actions)}."
                )
            )
    column_names = [c["name"] for c in obj.get("columns", [])]
    allowed = None
    columns = entry.get("columns")
    if columns is not None:
        if not isinstance(columns, dict) or len(columns) != 1 or next(iter(columns)) not in ("allow", "deny"):
            errors.append(_error(index, "columns", 'columns must be {"allow": [...]} or {"deny": [...]}.'))
        else:
            mode, listed = next(iter(columns.items()))
            if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
                errors.append(_error(index, f"columns.{mode}", "must be a list of column names."))
            else:
                unknown = [c for c in listed if c not in column_names]
                if unknown:
                    errors.append(
                        _error(index, f"columns.{mode}", f"Unknown column(s) of {where}: {', '.join(unknown)}.")
                    )
                elif mode == "allow":
                    allowed = tuple(c for c in column_names if c in listed)
                    if not allowed:
                        errors.append(_error(index, "columns.allow", "Allow at least one column."))
                else:
                    allowed = tuple(c for c in column_names if c not in listed)
                    if not allowed:
                        errors.append(_error(index, "columns.deny", "Denying every column leaves nothing to read."))
    row_filter = entry.get("rowFilter") or {}
    if not isinstance(row_filter, dict):
        errors.append(_error(index, "rowFilter", 'rowFilter must be an object such as {"region": "EU"}.'))
        row_filter = {}
    elif row_filter and obj["kind"] not in ("table", "view"):
        errors.append(_error(index, "rowFilter", "A row filter applies to tables and views only."))
    for key, value in row_filter.items():
        if key not in column_names:
            errors.append(_error(index, f"rowFilter.{key}", f"Unknown column {key!r} of {where}."))
        elif value is not None and not isinstance(value, str | int | float | bool):
            errors.append(
                _error(index, f"rowFilter.{key}", "Row filter values must be strings, numbers, booleans or null.")
            )
    if errors:
        return errors, None
    grant = Grant(
        schema=obj["schema"],
        object_name=obj["name"],
        kind=obj["kind"],
        actions=frozenset(actions),
        allowed_columns=allowed,
        row_filter=dict(row_filter),
        object=obj,
    )
    return [], grant


def permissions_validate(*, service, permissions) -> list[dict]:
    """Check a permissions list against the Service's schema; return errors ({index, field, message})."""
    if not isinstance(permissions, list):
        return [_error(None, None, "Permissions must be a list of grants.")]
    schema = service_schema(service=service)
    errors: list[dict] = []
    seen: dict[tuple, int] = {}
    for index, entry in enumerate(permissions):
        entry_errors, grant = _check_entry(schema, index, entry)
        errors.extend(entry_errors)
        if grant is not None:
            key = (grant.schema, grant.object_name, grant.kind)
            if key in seen:
                errors.append(
                    _error(index, "objectName", f"{grant.object_name!r} is already granted by entry {seen[key]}.")
                )
            seen[key] = index
    return errors


class GrantList(list):
    """Grants with an index by (schema, name), so that finding one does not scan the Role's catalog."""

    _index: dict | None = None
    _by_name: dict | None = None
    _fingerprint: str | None = None

    def find(self, *, object_name: str, schema: str | None, default_schema: str) -> Grant | None:
        if self._index is None:
            by_name: dict[str, list[Grant]] = {}
            for grant in self:
                by_name.setdefault(grant.object_name, []).append(grant)
            self._by_name = by_name
            self._index = {(g.schema, g.object_name): g for g in reversed(self)}
        found = self._index.get((schema or default_schema, object_name))
        if found is not None:
            return found
        if schema is None:
            matches = self._by_name.get(object_name) or []
            if len(matches) == 1:
                return matches[0]
        return None


def grants_fingerprint(grants: list[Grant], *, schema: dict) -> str:
    """A digest of everything a grant decides about SQL: objects, kinds, actions, columns and their types, row filters.

    Computed once per grants object (kept on a GrantList), so a check stored with it can be
    trusted exactly while the Role's grants and its objects' columns are the same.
    """
    memo = getattr(grants, "_fingerprint", None)
    if memo is not None:
        return memo
    parts = [schema.get("engine"), schema.get("default_schema")]
    for grant in grants:
        columns = [[c.get("name"), c.get("json_type"), c.get("format")] for c in grant.object.get("columns", [])]
        parts.append(
            [
                grant.schema,
                grant.object_name,
                grant.kind,
                sorted(grant.actions),
                list(grant.allowed_columns) if grant.allowed_columns is not None else None,
                sorted(grant.row_filter.items()),
                columns,
            ]
        )
    digest = hashlib.sha256(json.dumps(parts, default=str, separators=(",", ":")).encode()).hexdigest()
    if isinstance(grants, GrantList):
        grants._fingerprint = digest
    return digest


def grants_from_permissions(*, schema: dict, permissions) -> list[Grant]:
    """Valid grants only: an invalid entry grants nothing (fail closed) and is logged."""
    grants = GrantList()
    for index, entry in enumerate(permissions if isinstance(permissions, list) else []):
        errors, grant = _check_entry(schema, index, entry)
        if grant is None:
            logger.warning("Ignoring invalid permission entry %s: %s", index, errors)
            continue
        grants.append(grant)
    return grants


def role_grants(*, role) -> list[Grant]:
    """The Role's grants, resolved against its Service's (cached) schema; none when the Role is inactive.

    Kept on the role object while its schema and permissions are the same objects, so the
    requests served by one cached Role resolve its grants once.
    """
    if not role.is_active:
        return []
    schema = service_schema(service=role.service)
    permissions = role.permissions
    memo = getattr(role, "_nectar_grants", None)
    if memo is not None and memo[0] is schema and memo[1] is permissions and memo[2] == _shape(permissions):
        return memo[3]
    grants = grants_from_permissions(schema=schema, permissions=permissions)
    role._nectar_grants = (schema, permissions, _shape(permissions), grants)
    return grants


def _shape(permissions) -> int:
    return len(permissions) if isinstance(permissions, list) else -1


def grant_find(grants: list[Grant], *, object_name: str, schema: str | None, default_schema: str) -> Grant | None:
    if isinstance(grants, GrantList):
        return grants.find(object_name=object_name, schema=schema, default_schema=default_schema)
    for grant in grants:
        if grant.object_name == object_name and grant.schema == (schema or default_schema):
            return grant
    if schema is None:
        matches = [g for g in grants if g.object_name == object_name]
        if len(matches) == 1:
            return matches[0]
    return None
