"""Admin forms: the Role permission editor built from the live introspected schema."""

from __future__ import annotations

import json

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from roles.connectors import ConnectorError
from roles.permissions import ACTIONS_BY_KIND, permissions_validate

PATH_OF_KIND = {"table": "table", "view": "view", "procedure": "proc", "function": "proc"}


class PermissionEditorWidget(forms.Widget):
    """One row per database object: action checkboxes, a column allow/deny list and a row filter.

    Submitted fields are named NAME__<i>__object (hidden, the object's identity), NAME__<i>__actions,
    NAME__<i>__colmode ("all", "allow", "deny"), NAME__<i>__cols and NAME__<i>__rowfilter (JSON).
    """

    def __init__(self, schema: dict, attrs=None):
        super().__init__(attrs)
        self.schema = schema

    def value_from_datadict(self, data, files, name):
        permissions = []
        i = 0
        while f"{name}__{i}__object" in data:
            prefix = f"{name}__{i}__"
            i += 1
            try:
                schema_name, object_name, kind = json.loads(data[f"{prefix}object"])
            except (TypeError, ValueError):
                continue
            actions = data.getlist(f"{prefix}actions") if hasattr(data, "getlist") else data.get(f"{prefix}actions", [])
            if not actions:
                continue
            entry = {
                "objectName": object_name,
                "schema": schema_name,
                "path": f"/{PATH_OF_KIND.get(kind, kind)}/{object_name}",
                "actions": list(actions),
            }
            mode = data.get(f"{prefix}colmode", "all")
            if mode in ("allow", "deny"):
                cols = data.getlist(f"{prefix}cols") if hasattr(data, "getlist") else data.get(f"{prefix}cols", [])
                entry["columns"] = {mode: list(cols)}
            row_filter = (data.get(f"{prefix}rowfilter") or "").strip()
            if row_filter:
                entry["rowFilter"] = row_filter  # parsed and checked by PermissionsField.clean
            permissions.append(entry)
        return permissions

    def render(self, name, value, attrs=None, renderer=None):
        current = value if isinstance(value, list) else _loads_list(value)
        by_key = {}
        for entry in current:
            if isinstance(entry, dict):
                by_key[(entry.get("schema"), entry.get("objectName"))] = entry
                by_key.setdefault((None, entry.get("objectName")), entry)
        default_schema = self.schema.get("default_schema")
        rows = []
        for i, obj in enumerate(self.schema.get("objects", [])):
            entry = by_key.get((obj["schema"], obj["name"]))
            if entry is None and obj["schema"] == default_schema:
                entry = by_key.get((None, obj["name"]), {})
            rows.append(self._render_object(name, i, obj, entry or {}))
        header = mark_safe(
            "<thead><tr><th>Object</th><th>Actions</th><th>Columns</th><th>Row filter (JSON)</th></tr></thead>"
        )
        return format_html(
            '<div class="nectar-permission-editor"><table class="nectar-permissions">{}<tbody>{}</tbody></table>'
            "<p class='help'>Tick the actions to grant. Column lists apply to reads and writes; a row filter "
            'such as {{"region": "EU"}} confines every read, update and delete.</p></div>',
            header,
            mark_safe("".join(rows)),  # noqa: S308 - each row is built with format_html
        )

    def _render_object(self, name, i, obj, entry) -> str:
        prefix = f"{name}__{i}__"
        granted = set(entry.get("actions") or [])
        actions = format_html_join(
            " ",
            '<label><input type="checkbox" name="{}" value="{}"{}> {}</label>',
            (
                (f"{prefix}actions", action, mark_safe(" checked") if action in granted else "", action)
                for action in ACTIONS_BY_KIND.get(obj["kind"], ())
            ),
        )
        columns_cell = ""
        if obj["kind"] in ("table", "view") and obj.get("columns"):
            col_spec = entry.get("columns") or {}
            mode = next(iter(col_spec), "all") if isinstance(col_spec, dict) and col_spec else "all"
            listed = set(col_spec.get(mode) or []) if mode != "all" else set()
            options = format_html_join(
                "",
                '<option value="{}"{}>{}</option>',
                (
                    (m, mark_safe(" selected") if m == mode else "", label)
                    for m, label in (("all", "all columns"), ("allow", "only these"), ("deny", "all except these"))
                ),
            )
            boxes = format_html_join(
                " ",
                '<label><input type="checkbox" name="{}" value="{}"{}> {}</label>',
                (
                    (f"{prefix}cols", c["name"], mark_safe(" checked") if c["name"] in listed else "", c["name"])
                    for c in obj["columns"]
                ),
            )
            columns_cell = format_html('<select name="{}colmode">{}</select><br>{}', prefix, options, boxes)
        row_filter = entry.get("rowFilter")
        if isinstance(row_filter, dict):
            row_filter = json.dumps(row_filter) if row_filter else ""
        filter_cell = ""
        if obj["kind"] in ("table", "view"):
            filter_cell = format_html(
                '<input type="text" name="{}rowfilter" value="{}" placeholder=\'{{"region": "EU"}}\' size="24">',
                prefix,
                row_filter or "",
            )
        identity = json.dumps([obj["schema"], obj["name"], obj["kind"]])
        return format_html(
            '<tr><td><input type="hidden" name="{}object" value="{}"><code>{}.{}</code> <small>{}</small></td>'
            "<td>{}</td><td>{}</td><td>{}</td></tr>",
            prefix,
            identity,
            obj["schema"],
            obj["name"],
            obj["kind"],
            actions,
            columns_cell,
            filter_cell,
        )


def _loads_list(value) -> list:
    if isinstance(value, str) and value.strip():
        try:
            loaded = json.loads(value)
        except ValueError:
            return []
        return loaded if isinstance(loaded, list) else []
    return []


class PermissionsField(forms.Field):
    """Permissions as a list; row filters typed in the editor are parsed from JSON here."""

    def to_python(self, value):
        if value in (None, ""):
            return []
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise forms.ValidationError(f"Permissions must be valid JSON: {exc}") from exc
        if not isinstance(value, list):
            raise forms.ValidationError("Permissions must be a list of grants.")
        errors = []
        for entry in value:
            if isinstance(entry, dict) and isinstance(entry.get("rowFilter"), str):
                try:
                    entry["rowFilter"] = json.loads(entry["rowFilter"])
                except ValueError:
                    errors.append(f'{entry.get("objectName")}: the row filter must be JSON such as {{"region": "EU"}}.')
                    continue
                if not isinstance(entry["rowFilter"], dict):
                    errors.append(f"{entry.get('objectName')}: the row filter must be a JSON object.")
        if errors:
            raise forms.ValidationError(errors)
        return value

    def prepare_value(self, value):
        return value


class PermissionsJSONWidget(forms.Textarea):
    def format_value(self, value):
        if isinstance(value, list | dict):
            return json.dumps(value, indent=2)
        return value


def permissions_form_errors(*, service, permissions) -> list[str]:
    """Validation messages for a form, naming the object each error is about."""
    try:
        errors = permissions_validate(service=service, permissions=permissions)
    except ConnectorError as exc:
        return [f"Cannot read the database schema to check the permissions: {exc.message}"]
    messages = []
    for error in errors:
        index = error["index"]
        entry = permissions[index] if isinstance(index, int) and index < len(permissions) else {}
        label = entry.get("objectName") if isinstance(entry, dict) and entry.get("objectName") else f"entry {index}"
        field = f" ({error['field']})" if error["field"] else ""
        messages.append(f"{label}{field}: {error['message']}")
    return messages
