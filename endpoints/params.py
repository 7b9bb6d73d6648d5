"""Parameter JSON schemas of generated endpoints: checking a schema, and parsing a call's values against it.

A schema is {"type": "object", "properties": {name: {"type", "format", "enum", "default", "minimum",
"maximum", "minLength", "maxLength", "pattern", "items", "description"}}, "required": [...]}; what
it may say is itself a JSON Schema (PARAMETERS_SCHEMA), and typed values are checked against their
parameter's constraints with jsonschema.
Values come from a query string (text to coerce) or a JSON body (typed already). Every problem is
reported as {"field", "message", "code"}; a call with any problem runs nothing.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from nectar.text import data_text_problem

PARAMETER_TYPES = ("string", "integer", "number", "boolean", "array")
FORMATS = ("date", "date-time", "time", "uuid", "email", "decimal")
# Query parameters the runtime uses for pagination; an endpoint cannot declare them.
RESERVED_NAMES = ("limit", "offset", "page")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


# What a parameter schema may say, as a JSON Schema checked by jsonschema.
_NON_ARRAY_TYPES = [t for t in PARAMETER_TYPES if t != "array"]
PARAMETER_SPEC_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"enum": list(PARAMETER_TYPES)},
        "format": {"enum": list(FORMATS)},
        "enum": {"type": "array", "minItems": 1},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "minLength": {"type": "number"},
        "maxLength": {"type": "number"},
        "pattern": {"type": "string", "format": "regex"},
        "items": {"type": "object", "required": ["type"], "properties": {"type": {"enum": _NON_ARRAY_TYPES}}},
        "description": {"type": "string"},
    },
    "if": {"required": ["type"], "properties": {"type": {"const": "array"}}},
    "then": {"required": ["items"]},
}
PARAMETERS_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"const": "object"},
        "properties": {
            "type": "object",
            "propertyNames": {"pattern": NAME_RE.pattern, "not": {"enum": list(RESERVED_NAMES)}},
            "additionalProperties": PARAMETER_SPEC_SCHEMA,
        },
        "required": {"type": "array", "items": {"type": "string"}},
    },
}
_SCHEMA_VALIDATOR = Draft202012Validator(PARAMETERS_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
_A = {"object": "an object", "array": "a list", "number": "a number", "string": "a string"}


def _problem(field: str, message: str, code: str) -> dict:
    return {"field": field, "message": message, "code": code}


def _schema_problem(error: ValidationError) -> str:
    """One problem of a parameter schema, worded for the person who wrote it (which field, what was expected)."""
    path = [str(p) for p in error.absolute_path]
    where = ".".join(["parameters", *path])
    rule, expected = error.validator, error.validator_value
    if path == ["type"]:
        return 'parameters.type must be "object".'
    if path == ["properties"] and rule == "not":
        name = error.instance
        return f"{where}.{name}: {name!r} is reserved for pagination; choose another name (e.g. top_n)."
    if path == ["properties"] and rule == "pattern":
        return (
            f"{where}.{error.instance}: a parameter name must be a letter or underscore followed by letters, digits, _."
        )
    if path[:1] == ["required"]:
        return "parameters.required must list declared parameter names only."
    if path == ["properties"] and rule == "type":
        return "parameters.properties must be an object mapping names to schemas."
    if path[2:3] == ["items"] or (rule == "required" and expected == ["items"]):
        return f"{'.'.join(['parameters', *path[:2]])}.items must be the schema of one (non-array) item."
    if rule == "required":
        return f"{where}.type must be one of {', '.join(PARAMETER_TYPES)}."
    if rule == "enum":
        return f"{where} must be one of {', '.join(map(str, expected))}."
    if rule == "minItems":
        return f"{where} must be a non-empty list."
    if rule == "format":
        return f"{where} is not a valid regular expression."
    if rule == "type":
        return f"{where} must be {_A.get(expected, expected)}."
    return f"{where}: {error.message}"


def parameters_schema_check(schema: Any) -> list[str]:
    """Problems with a parameter schema itself (empty when it is usable)."""
    if not isinstance(schema, dict):
        return ["parameters must be a JSON schema object."]
    errors = [_schema_problem(e) for e in sorted(_SCHEMA_VALIDATOR.iter_errors(schema), key=lambda e: list(e.path))]
    properties = schema.get("properties", {})
    if errors:
        return errors
    for name, spec in properties.items():
        if spec.get("default") is not None:
            _, problems = _coerce(name, spec, spec["default"], from_text=False)
            errors.extend(f"parameters.properties.{name}.default: {p['message']}" for p in problems)
    if any(r not in properties for r in schema.get("required", [])):
        errors.append("parameters.required must list declared parameter names only.")
    return errors


def _expected(spec: dict) -> str:
    kind = spec.get("type")
    if spec.get("format"):
        return f"a {spec['format']} {kind}" if kind != "string" else f"a {spec['format']} string"
    return {"integer": "an integer", "array": "a list", "boolean": "true or false"}.get(kind, f"a {kind}")


def _coerce_scalar(spec: dict, value: Any, *, from_text: bool) -> Any:
    """Return the typed value or raise ValueError with what was expected."""
    kind, fmt = spec.get("type"), spec.get("format")
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if from_text and isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise ValueError
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and (from_text or fmt == "decimal"):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise ValueError from None
            if not number.is_finite():
                raise ValueError
        else:
            raise ValueError
        return Decimal(str(number)) if fmt == "decimal" else float(number)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if from_text and isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ValueError
    if not isinstance(value, str):
        raise ValueError
    if fmt == "date":
        return date.fromisoformat(value)
    if fmt == "date-time":
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if fmt == "time":
        return time.fromisoformat(value)
    if fmt == "uuid":
        return str(uuid.UUID(value))
    if fmt == "email" and not _EMAIL_RE.match(value):
        raise ValueError
    if fmt == "decimal":
        try:
            return Decimal(value)
        except InvalidOperation:
            raise ValueError from None
    return value


# Constraint keyword -> (error code, message) for a value that breaks it.
_CONSTRAINTS = {
    "enum": ("invalid_choice", lambda spec: f"Must be one of: {', '.join(str(v) for v in spec['enum'])}."),
    "minimum": ("out_of_range", lambda spec: f"Must be at least {spec['minimum']}."),
    "maximum": ("out_of_range", lambda spec: f"Must be at most {spec['maximum']}."),
    "minLength": ("too_short", lambda spec: f"Must have at least {spec['minLength']} characters."),
    "maxLength": ("too_long", lambda spec: f"Must have at most {spec['maxLength']} characters."),
    "pattern": ("pattern_mismatch", lambda spec: f"Must match the pattern {spec['pattern']}."),
}


def _check_constraints(field: str, spec: dict, value: Any) -> list[dict]:
    """The typed value's breaches of its spec's enum, bounds, lengths and pattern, checked by jsonschema."""
    constraints = {key: spec[key] for key in _CONSTRAINTS if key in spec}
    if "enum" in constraints and str(value) in [str(v) for v in constraints["enum"]]:
        del constraints["enum"]  # "3" for [3, 4]: query strings are text
    if not constraints:
        return []
    if isinstance(value, Decimal):
        value = float(value)
    elif isinstance(value, date | datetime | time):
        value = value.isoformat()
    return [
        _problem(field, _CONSTRAINTS[e.validator][1](spec), _CONSTRAINTS[e.validator][0])
        for e in Draft202012Validator(constraints).iter_errors(value)
    ]


def _coerce(field: str, spec: dict, value: Any, *, from_text: bool) -> tuple[Any, list[dict]]:
    if spec.get("type") == "array":
        items = value
        if from_text and isinstance(value, str):
            items = [v for v in value.split(",") if v != ""]
        if not isinstance(items, list):
            return None, [
                _problem(field, "Expected a list (repeat the parameter or separate values by commas).", "invalid_type")
            ]
        out, problems = [], []
        for index, item in enumerate(items):
            typed, item_problems = _coerce(f"{field}[{index}]", spec.get("items") or {}, item, from_text=from_text)
            out.append(typed)
            problems.extend(item_problems)
        return out, problems
    try:
        typed = _coerce_scalar(spec, value, from_text=from_text)
    except (ValueError, TypeError):
        code = "invalid_format" if spec.get("format") and isinstance(value, str) else "invalid_type"
        return None, [_problem(field, f"Expected {_expected(spec)}, got {str(value)[:60]!r}.", code)]
    return typed, _check_constraints(field, spec, typed)


def parameters_parse(*, schema: dict, values: dict, from_text: bool) -> tuple[dict, list[dict]]:
    """Typed values for every declared parameter (None when absent and without default), and the problems.

    `values` maps names to a value, or to a list of values for repeated query parameters.
    """
    properties = (schema or {}).get("properties", {}) or {}
    required = set((schema or {}).get("required", []) or [])
    problems: list[dict] = []
    for name in values:
        if bad := data_text_problem({name: values[name]}):
            # NUL, invalid UTF-8, lone surrogates: refused before anything else looks at the value.
            problems.append(_problem(bad[0], bad[1], "invalid_text"))
        elif name not in properties:
            known = ", ".join(sorted(properties)) or "none"
            problems.append(_problem(name, f"Unknown parameter. Accepted parameters: {known}.", "unknown_parameter"))
    if problems and any(p["code"] == "invalid_text" for p in problems):
        return {}, problems
    parsed: dict[str, Any] = {}
    for name, spec in properties.items():
        raw = values.get(name)
        if isinstance(raw, list) and spec.get("type") != "array":
            if len(raw) > 1:
                problems.append(_problem(name, "Give this parameter once.", "invalid_type"))
                continue
            raw = raw[0] if raw else None
        if isinstance(raw, list) and from_text and len(raw) == 1:
            raw = raw[0]
        if raw is None or (from_text and raw == "" and spec.get("type") != "string"):
            if name in required:
                problems.append(_problem(name, "This parameter is required.", "required"))
                continue
            raw = spec.get("default")
            if raw is None:
                parsed[name] = None
                continue
            typed, item_problems = _coerce(name, spec, raw, from_text=False)
        else:
            typed, item_problems = _coerce(name, spec, raw, from_text=from_text)
        problems.extend(item_problems)
        parsed[name] = typed
    return parsed, problems


def parameters_json_safe(values: dict) -> dict:
    """Parameters as JSON values (for the audit log and stored test results)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, date | datetime | time):
            out[key] = value.isoformat()
        elif isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, list):
            out[key] = list(parameters_json_safe(dict(enumerate(value))).values())
        else:
            out[key] = value
    return out


_STRIP_RE = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.S)
_BIND_RE = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def sql_bind_names(sql: str) -> list[str]:
    """Named binds (:name) of a statement, outside literals, comments and :: casts, in order of appearance."""
    names: list[str] = []
    for name in _BIND_RE.findall(_STRIP_RE.sub(" ", sql or "")):
        if name not in names:
            names.append(name)
    return names
