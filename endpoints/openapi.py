"""drf-spectacular hook: every deployed generated endpoint appears in the platform's OpenAPI schema."""

from __future__ import annotations

import copy

from django.conf import settings

from endpoints.models import GeneratedEndpoint
from endpoints.numbers import public_row_schema
from roles.selectors import organization_ids_for_user

SECURITY_SCHEME = "RoleApiKey"
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "code": {"type": "string"},
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string"},
                            "message": {"type": "string"},
                            "code": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}
_ERRORS = {
    "400": "Invalid parameters: each error names the field, the problem and a code.",
    "401": "Missing, invalid, revoked or expired API key.",
    "403": "The API key belongs to another role.",
    "404": "No such endpoint.",
    "410": "This version has been retired.",
    "429": "Rate limit of the API key exceeded.",
}


def _visible_endpoints(request):
    """Deployed endpoints the schema's reader may see: all for CLI generation, else the user's organizations."""
    current = GeneratedEndpoint.objects.live().select_related("organization").order_by("organization__slug", "slug")
    user = getattr(request, "user", None) if request is not None else None
    if request is None:
        return current
    if user is None or not user.is_authenticated:
        return current.none()
    if getattr(user, "is_superuser", False):
        return current

    return current.filter(organization__in=organization_ids_for_user(user))


def _component_name(endpoint: GeneratedEndpoint) -> str:
    words = [endpoint.organization.slug, *endpoint.slug.split("-"), f"v{endpoint.version}"]
    return "".join(w.replace("-", " ").title().replace(" ", "") for w in words) + "Row"


def _parameters(endpoint: GeneratedEndpoint) -> list[dict]:
    schema = endpoint.parameters or {}
    required = set(schema.get("required", []))
    out = []
    for name, spec in schema.get("properties", {}).items():
        param_schema = {k: v for k, v in spec.items() if k != "description"}
        out.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": spec.get("description", ""),
                "schema": param_schema,
                **({"style": "form", "explode": True} if spec.get("type") == "array" else {}),
            }
        )
    cap = settings.QUERY_ROW_CAP
    out += [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Rows per page.",
            "schema": {"type": "integer", "minimum": 1, "maximum": cap},
        },
        {
            "name": "offset",
            "in": "query",
            "required": False,
            "description": "Rows to skip.",
            "schema": {"type": "integer", "minimum": 0, "maximum": cap - 1},
        },
        {
            "name": "page",
            "in": "query",
            "required": False,
            "description": "Page number (instead of offset).",
            "schema": {"type": "integer", "minimum": 1},
        },
    ]
    return out


def _operation(endpoint: GeneratedEndpoint, row_ref: dict, *, versioned: bool) -> dict:
    if endpoint.is_read_only:
        ok = {
            "description": "A page of rows (capped at QUERY_ROW_CAP).",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "endpoint": {"type": "string"},
                            "version": {"type": "integer"},
                            "count": {"type": "integer"},
                            "total": {"type": "integer", "nullable": True},
                            "limit": {"type": "integer"},
                            "offset": {"type": "integer"},
                            "next": {"type": "string", "format": "uri", "nullable": True},
                            "previous": {"type": "string", "format": "uri", "nullable": True},
                            "truncated": {"type": "boolean"},
                            "columns": {"type": "array", "items": {"type": "string"}},
                            "results": {"type": "array", "items": row_ref},
                        },
                        "required": ["count", "results"],
                    }
                }
            },
        }
        status = "200"
    else:
        ok = {
            "description": "Rows written.",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"row_count": {"type": "integer"}, "rows": {"type": "array", "items": row_ref}},
                    }
                }
            },
        }
        status = "201" if endpoint.write_action.get("action") == "insert" else "200"
    title = (endpoint.description or endpoint.slug).splitlines()[0][:120]
    operation = {
        "operationId": f"x_{endpoint.organization.slug}_{endpoint.slug}".replace("-", "_")
        + (f"_v{endpoint.version}" if versioned else ""),
        "summary": title + (f" (v{endpoint.version})" if versioned else ""),
        "description": endpoint.description or "",
        "tags": [f"generated: {endpoint.organization.slug}"],
        "security": [{SECURITY_SCHEME: []}],
        "responses": {
            status: ok,
            **{
                code: {"description": text, "content": {"application/json": {"schema": copy.deepcopy(_ERROR)}}}
                for code, text in _ERRORS.items()
            },
        },
    }
    if endpoint.is_read_only:
        operation["parameters"] = _parameters(endpoint)
    else:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": copy.deepcopy(endpoint.parameters or {"type": "object"})}},
        }
    return operation


def postprocess_generated_endpoints(result, generator, request, public, **kwargs):
    """Add a path (and a versioned path) per deployed endpoint, its row schema and the bearer scheme."""
    endpoints = list(_visible_endpoints(request))
    if not endpoints:
        return result
    return _add_endpoints(result, endpoints)


def organization_openapi(*, organization) -> dict:
    """The OpenAPI 3 document of one organization's deployed endpoints: current and versioned paths."""
    endpoints = list(
        GeneratedEndpoint.objects.live()
        .filter(organization=organization)
        .select_related("organization")
        .order_by("slug", "version")
    )
    document = {
        "openapi": "3.0.3",
        "info": {
            "title": f"{organization.name}: generated APIs",
            "version": str(max((e.deployed_at for e in endpoints if e.deployed_at), default="0") or "0"),
            "description": (
                f"Every deployed endpoint of {organization.name}. Call each one with an API key of its role "
                "(`Authorization: Bearer nk_...`). `/v<N>` paths answer that version until it is retired; "
                "the path without a version is the current one."
            ),
        },
        "servers": [{"url": settings.PUBLIC_BASE_URL}],
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    if not endpoints:
        document["components"]["securitySchemes"][SECURITY_SCHEME] = _security_scheme()
        return document
    return _add_endpoints(document, endpoints)


def _security_scheme() -> dict:
    return {"type": "http", "scheme": "bearer", "description": "An API key of the endpoint's role (nk_...)."}


def _add_endpoints(result: dict, endpoints: list[GeneratedEndpoint]) -> dict:
    paths = result.setdefault("paths", {})
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = _security_scheme()
    current_version = {}
    for endpoint in endpoints:
        key = (endpoint.organization_id, endpoint.slug)
        current_version[key] = max(current_version.get(key, 0), endpoint.version)
    for endpoint in endpoints:
        name = _component_name(endpoint)
        schemas[name] = public_row_schema(endpoint.response_schema)
        row_ref = {"$ref": f"#/components/schemas/{name}"}
        method = endpoint.method.lower()
        paths.setdefault(endpoint.versioned_path, {})[method] = _operation(endpoint, row_ref, versioned=True)
        if endpoint.version == current_version[(endpoint.organization_id, endpoint.slug)]:
            paths.setdefault(endpoint.path, {})[method] = _operation(endpoint, row_ref, versioned=False)
    return result
