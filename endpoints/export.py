"""Export a generated endpoint as standalone code: a DRF view, urls, pytest tests and a README, zipped.

The view runs the endpoint's SQL with SQLAlchemy text() and bound parameters against DATABASE_URL;
the tests are the endpoint's own test cases. Nothing here depends on Nectar.
"""

from __future__ import annotations

import io
import json
import pprint
import re
import zipfile

from django.conf import settings

from endpoints.docs import markdown_docs
from endpoints.models import GeneratedEndpoint
from endpoints.params import sql_bind_names
from endpoints.runtime import page_size_default


def _class_name(slug: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", slug)) + "View"


def _package(endpoint: GeneratedEndpoint) -> str:
    return f"{endpoint.slug.replace('-', '_')}_v{endpoint.version}"


def _field(name: str, spec: dict, required: bool) -> str:
    """A DRF serializer field declaration for one parameter schema."""
    kind, fmt = spec.get("type", "string"), spec.get("format")
    kwargs: list[str] = []
    if spec.get("enum"):
        cls = "serializers.ChoiceField"
        kwargs.append(f"choices={spec['enum']!r}")
    elif kind == "integer":
        cls = "serializers.IntegerField"
    elif kind == "number":
        cls = "serializers.DecimalField" if fmt == "decimal" else "serializers.FloatField"
        if fmt == "decimal":
            kwargs += ["max_digits=30", "decimal_places=10"]
    elif kind == "boolean":
        cls = "serializers.BooleanField"
    elif kind == "array":
        item = _field("item", spec.get("items") or {"type": "string"}, True).split(" = ", 1)[1]
        cls = "serializers.ListField"
        kwargs.append(f"child={item}")
    elif fmt == "date":
        cls = "serializers.DateField"
    elif fmt == "date-time":
        cls = "serializers.DateTimeField"
    elif fmt == "time":
        cls = "serializers.TimeField"
    elif fmt == "uuid":
        cls = "serializers.UUIDField"
    elif fmt == "email":
        cls = "serializers.EmailField"
    else:
        cls = "serializers.CharField"
    if kind in ("integer", "number") and not spec.get("enum"):
        if "minimum" in spec:
            kwargs.append(f"min_value={spec['minimum']!r}")
        if "maximum" in spec:
            kwargs.append(f"max_value={spec['maximum']!r}")
    if cls in ("serializers.CharField",):
        if "minLength" in spec:
            kwargs.append(f"min_length={spec['minLength']!r}")
        if "maxLength" in spec:
            kwargs.append(f"max_length={spec['maxLength']!r}")
    if cls == "serializers.CharField" and "pattern" in spec:
        cls = "serializers.RegexField"
        kwargs.insert(0, f"regex={spec['pattern']!r}")
    if not required:
        if spec.get("default") is not None:
            kwargs.append(f"default={spec['default']!r}")
        else:
            kwargs += ["required=False", "allow_null=True"]
    if spec.get("description"):
        kwargs.append(f"help_text={spec['description']!r}")
    return f"    {name} = {cls}({', '.join(kwargs)})"


_VIEW = '''"""{title}

Exported from Nectar: {slug} v{version}. A standalone Django REST framework view; it reads the
database named by the DATABASE_URL environment variable (a SQLAlchemy URL) with bound parameters.
"""

from __future__ import annotations

import os
from functools import lru_cache

import sqlalchemy as sa
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

{statement}
ROW_CAP = {cap}
PAGE_SIZE = {page}


@lru_cache(maxsize=1)
def get_engine() -> sa.Engine:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("Set DATABASE_URL to the SQLAlchemy URL of the database (e.g. postgresql+psycopg://...).")
    return sa.create_engine(url, pool_pre_ping=True)


class ParametersSerializer(serializers.Serializer):
{fields}
{paging}

def _errors(serializer) -> list[dict]:
    return [
        {{"field": field, "message": str(error), "code": getattr(error, "code", "invalid")}}
        for field, errors in serializer.errors.items()
        for error in (errors if isinstance(errors, list) else [errors])
    ]


class {cls}(APIView):
    """{description_line}"""

    def {handler}(self, request):
        data = {data_source}
        unknown = sorted(set(data) - set(ParametersSerializer().fields))
        if unknown:
            errors = [
                {{"field": name, "message": "Unknown parameter.", "code": "unknown_parameter"}} for name in unknown
            ]
            return Response({{"errors": errors}}, status=status.HTTP_400_BAD_REQUEST)
        serializer = ParametersSerializer(data=data)
        if not serializer.is_valid():
            return Response({{"errors": _errors(serializer)}}, status=status.HTTP_400_BAD_REQUEST)
        params = dict(serializer.validated_data)
{body}
'''

_READ_BODY = """        limit, offset = params.pop("limit"), params.pop("offset")
        binds = {{name: params.get(name) for name in BINDS}}
        with get_engine().connect() as conn:
            result = conn.execute(STATEMENT, binds)
            columns = list(result.keys())
            rows = [dict(row) for row in result.mappings().fetchmany(min(offset + limit + 1, ROW_CAP + 1))]
        page = rows[offset : offset + limit]
        return Response(
            {{
                "count": len(page),
                "limit": limit,
                "offset": offset,
                "has_next": len(rows) > offset + limit and offset + limit < ROW_CAP,
                "truncated": len(rows) > ROW_CAP,
                "columns": columns,
                "results": page,
            }}
        )"""

_WRITE_BODY = """        values = {{column: params.get(name) for column, name in VALUES.items()}}
        filters = {{column: params.get(name) for column, name in FILTERS.items()}}
        with get_engine().begin() as conn:
            result = conn.execute(build_statement(values, filters))
        return Response({{"row_count": result.rowcount}}, status={ok_status})"""

_URLS = """from django.urls import path

from {package}.views import {cls}

urlpatterns = [
    path("{slug}", {cls}.as_view(), name="{slug}"),
]
"""

_CONFTEST = '''"""Minimal Django settings so the exported view and its tests run without a project."""

import django
from django.conf import settings


def pytest_configure():
    if not settings.configured:
        settings.configure(
            SECRET_KEY="exported-endpoint-tests",
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
            DATABASES={},
            ROOT_URLCONF="{package}.urls",
            USE_TZ=True,
            REST_FRAMEWORK={
                "DEFAULT_AUTHENTICATION_CLASSES": [],
                "DEFAULT_PERMISSION_CLASSES": [],
                "UNAUTHENTICATED_USER": None,
            },
        )
        django.setup()
'''

_TESTS_HEAD = '''"""Tests of {slug} v{version}, from the cases Nectar ran against the live database.

Run with DATABASE_URL pointing at that database: DATABASE_URL=... pytest
"""

import os

import pytest
from rest_framework.test import APIRequestFactory

from {package}.views import ROW_CAP, {cls}

CASES = {cases}


def _same(a, b):
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return a is not None and b is not None and str(a) == str(b)


def _canonical(row):
    return sorted((k, None if v is None else str(v)) for k, v in row.items())


@pytest.fixture(autouse=True)
def _database_url():
    assert os.environ.get("DATABASE_URL"), "Set DATABASE_URL to the database these tests run against."


def call(params):
    factory = APIRequestFactory()
    {request_line}
    return {cls}.as_view()(request)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case):
    expect = case.get("expect", {{}})
    response = call(case.get("params", {{}}))
    assert response.status_code == expect.get("status", 200), response.data
    if response.status_code >= 400:
        return
'''

_TESTS_READ_CHECKS = """    rows = response.data["results"]
    if "min_rows" in expect:
        assert len(rows) >= expect["min_rows"]
    if "max_rows" in expect:
        assert len(rows) <= expect["max_rows"]
    for column in expect.get("columns", []):
        assert column in response.data["columns"]
    for column, value in expect.get("sample", {}).items():
        assert any(_same(row.get(column), value) for row in rows), f"no row has {column} = {value!r}"
    if "rows_equal" in expect:
        assert sorted(map(_canonical, rows)) == sorted(map(_canonical, expect["rows_equal"]))
"""


def _write_statement(action: dict) -> str:
    mapping = action.get("mapping") or {}
    values, filters = mapping.get("values") or {}, mapping.get("filters") or {}
    columns = sorted(set(values) | set(filters))
    kind = action["action"]
    lines = [
        f"VALUES = {values!r}",
        f"FILTERS = {filters!r}",
        f"TABLE = sa.table({action['object']!r}, {', '.join(f'sa.column({c!r})' for c in columns)}"
        + (f", schema={action['schema']!r})" if action.get("schema") else ")"),
        "",
        "",
        "def build_statement(values: dict, filters: dict):",
        "    where = [TABLE.c[column] == sa.bindparam(f'f_{column}', value) for column, value in filters.items()]",
    ]
    if kind == "insert":
        lines.append("    return sa.insert(TABLE).values(**values)")
    elif kind == "update":
        lines.append("    return sa.update(TABLE).where(*where).values(**values)")
    else:
        lines.append("    return sa.delete(TABLE).where(*where)")
    return "\n".join(lines)


def _summary(endpoint: GeneratedEndpoint) -> str:
    """The first line of the description, safe inside a generated docstring."""
    first = ((endpoint.description or "").strip().splitlines() or [""])[0][:200]
    return first.replace("\\", "/").replace('"', "'")


def export_files(endpoint: GeneratedEndpoint) -> dict[str, str]:
    package, cls = _package(endpoint), _class_name(endpoint.slug)
    schema = endpoint.parameters or {}
    required = set(schema.get("required", []))
    fields = [_field(name, spec, name in required) for name, spec in schema.get("properties", {}).items()]
    read = endpoint.is_read_only
    if read:
        statement = f"STATEMENT = sa.text(\n    {endpoint.sql!r}\n)\nBINDS = {tuple(sql_bind_names(endpoint.sql))!r}"
        paging = (
            "    limit = serializers.IntegerField(min_value=1, max_value=ROW_CAP, default=PAGE_SIZE)\n"
            "    offset = serializers.IntegerField(min_value=0, max_value=ROW_CAP - 1, default=0)\n"
        )
        body = _READ_BODY.format()
        handler, data_source = "get", "request.query_params.dict()"
    else:
        statement = _write_statement(endpoint.write_action)
        paging, handler = "", endpoint.method.lower()
        data_source = "request.data if isinstance(request.data, dict) else {}"
        ok_status = (
            "status.HTTP_201_CREATED" if endpoint.write_action.get("action") == "insert" else "status.HTTP_200_OK"
        )
        body = _WRITE_BODY.format(ok_status=ok_status)
    summary = _summary(endpoint)
    view = _VIEW.format(
        title=f"{endpoint.method} {endpoint.slug} v{endpoint.version}: {summary}".rstrip(": "),
        slug=endpoint.slug,
        version=endpoint.version,
        statement=statement,
        cap=settings.QUERY_ROW_CAP,
        page=page_size_default(),
        fields="\n".join(fields) or "    pass",
        paging=paging,
        cls=cls,
        description_line=summary or endpoint.slug,
        handler=handler,
        data_source=data_source,
        body=body,
    )
    cases = [c for c in (endpoint.tests or []) if isinstance(c, dict)]
    if read:
        cases = [{**c, "params": {**(c.get("params") or {}), "limit": settings.QUERY_ROW_CAP}} for c in cases]
        request_line = (
            'request = factory.get("/", {k: ("true" if v is True else "false" if v is False else v) '
            "for k, v in params.items()})"
        )
    else:
        request_line = f'request = factory.generic("{endpoint.method}", "/", data=params, format="json")'
    tests = _TESTS_HEAD.format(
        slug=endpoint.slug,
        version=endpoint.version,
        package=package,
        cls=cls,
        cases=pprint.pformat(json.loads(json.dumps(cases, default=str)), width=110, sort_dicts=False),
        request_line=request_line,
    )
    if read:
        tests += _TESTS_READ_CHECKS
    readme = "\n".join(
        [
            f"# {endpoint.slug} v{endpoint.version} (exported from Nectar)",
            "",
            endpoint.description or "",
            "",
            "## Files",
            "",
            f"- `{package}/views.py`: the DRF view (`{cls}`) with its parameter serializer",
            f"- `{package}/urls.py`: a URL pattern to include in your project",
            f"- `{package}/tests/test_{package}.py`: pytest tests from the cases Nectar ran",
            "- `conftest.py`: minimal Django settings for running the tests on their own",
            "",
            "## Run",
            "",
            "```bash",
            "pip install -r requirements.txt",
            "export DATABASE_URL='postgresql+psycopg://user:password@host/db'  # any SQLAlchemy URL",
            "pytest",
            "```",
            "",
            "In your project, add `rest_framework` to INSTALLED_APPS, include "
            f"`{package}.urls`, and put your own authentication on `{cls}`. The exported code runs with the "
            "database user of DATABASE_URL: give it only the grants of the Nectar role "
            "(row filters and column restrictions of the role are not re-applied here).",
            "",
            "---",
            "",
            markdown_docs(endpoint),
        ]
    )
    return {
        "README.md": readme,
        "requirements.txt": "Django>=5.0\ndjangorestframework>=3.15\nSQLAlchemy>=2.0\npytest>=8\n",
        "conftest.py": _CONFTEST.replace("{package}", package),
        f"{package}/__init__.py": "",
        f"{package}/views.py": view,
        f"{package}/urls.py": _URLS.format(package=package, cls=cls, slug=endpoint.slug),
        f"{package}/tests/__init__.py": "",
        f"{package}/tests/test_{package}.py": tests,
    }


def export_zip(endpoint: GeneratedEndpoint) -> bytes:
    buffer = io.BytesIO()
    root = f"{endpoint.slug}-v{endpoint.version}"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in export_files(endpoint).items():
            archive.writestr(f"{root}/{name}", text)
    return buffer.getvalue()
