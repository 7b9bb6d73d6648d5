"""Per-process caches of the generated endpoints' hot path: Role API keys and live endpoints.

Entries are dropped when anything of their organization changes (nectar.invalidation: the
database triggers tell every replica at commit, the save signals tell this process at once)
and are used only while the invalidation listener is healthy, so a revoked key, a retired or
newly deployed version is seen within milliseconds and never later than its staleness bound.
"""

from __future__ import annotations

import threading

from django.utils import timezone

from nectar import invalidation

_keys: dict[str, tuple[str, object]] = {}
_endpoints: dict[tuple, tuple[str, object]] = {}
_lock = threading.Lock()
MAX_ENTRIES = 10_000


def _drop(scope: str) -> None:
    with _lock:
        for cache in (_keys, _endpoints):
            if scope == invalidation.EVERYTHING:
                cache.clear()
            else:
                for name in [k for k, (org, _) in cache.items() if org == scope]:
                    cache.pop(name, None)


invalidation.subscribe(_drop)


def _put(cache: dict, name, organization_id, value, generation: int) -> None:
    if not invalidation.healthy() or generation != invalidation.generation():
        return  # something changed while it was read: do not keep it
    with _lock:
        if len(cache) >= MAX_ENTRIES:
            cache.clear()
        cache[name] = (str(organization_id), value)


def api_key_peek(key_hash: str):
    """The cached RoleApiKey for a key hash while it can be trusted and has not expired, else None."""
    entry = _keys.get(key_hash) if invalidation.healthy() else None
    if entry is not None:
        key = entry[1]
        if key.expires_at is None or key.expires_at > timezone.now():
            return key
    return None


def api_key_cached(key_hash: str, load):
    """The RoleApiKey (with role and organization) for a key hash; `load()` reads it on a miss."""
    key = api_key_peek(key_hash)
    if key is not None:
        return key
    generation = invalidation.generation()
    key = load()
    if key is not None and key.is_usable and key.role.is_active:
        _put(_keys, key_hash, key.role.organization_id, key, generation)
    return key


def endpoint_peek(name: tuple):
    """The cached live endpoint addressed by (organization slug, slug, version, role id), or None."""
    entry = _endpoints.get(name) if invalidation.healthy() else None
    return entry[1] if entry is not None else None


def endpoint_cached(name: tuple, load):
    """The live endpoint addressed by (organization slug, slug, version, role id); `load()` resolves it on a miss."""
    endpoint = endpoint_peek(name)
    if endpoint is not None:
        return endpoint
    generation = invalidation.generation()
    endpoint = load()  # raises Http404 / EndpointGone, which are not cached
    _put(_endpoints, name, endpoint.organization_id, endpoint, generation)
    return endpoint


def connect_signals() -> None:
    """Saves and deletes of endpoints in this process empty the caches of their organization at once."""
    from django.db.models.signals import post_delete, post_save

    from endpoints.models import GeneratedEndpoint

    def announce(sender, instance, update_fields=None, **kwargs):
        if update_fields is not None and set(update_fields) <= {"call_count", "avg_latency_ms", "updated_at"}:
            return
        invalidation.changed(instance.organization_id)

    post_save.connect(announce, sender=GeneratedEndpoint, dispatch_uid="endpoints.cache.save", weak=False)
    post_delete.connect(announce, sender=GeneratedEndpoint, dispatch_uid="endpoints.cache.delete", weak=False)
