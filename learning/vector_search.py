"""Nearest-neighbour search over memory embeddings with organization and type filters.

pgvector's HNSW index returns the nearest rows of the whole table and filters afterwards: a
query for one organization among many could come back short or miss its true neighbours.
pgvector 0.6 (the embedded server's) has no iterative index scans, so the search here:

1. looks up what share of the table the filters keep (organization, activity, types): one
   count through the (organization, is_active, type) b-tree index plus the table's size from
   pg_class, cached per process for SELECTIVITY_TTL seconds (the strategy only needs an
   estimate; correctness never depends on it). An organization with fewer candidate rows than
   the threshold is searched exactly: its rows through the b-tree index, a distance for each,
   sorted. No HNSW involved.
2. otherwise reads from HNSW just enough of the nearest rows of the whole table for the
   organization's share to hold about OVERFETCH_SAFETY * limit of its own rows:
   `hnsw.ef_search` and the LIMIT are set to ceil(OVERFETCH_SAFETY * limit / share), at least
   MIN_OVERFETCH (SET LOCAL, this transaction only), and the filters apply to that candidate
   set in the same query (no join back to the table). When that would exceed pgvector's
   useful ef_search (MAX_EF_SEARCH), the filters are too selective for the index and the
   search is exact instead;
3. falls back to the exact search when fewer than `limit` rows survive the filter.

The caller must be inside a transaction (SET LOCAL). Identifiers are constants of this module;
every value is a bound parameter.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

# Organizations with fewer candidate rows than this are searched exactly.
EXACT_SEARCH_THRESHOLD = 5000
# HNSW candidates: enough for OVERFETCH_SAFETY * limit rows of the organization's share, within
# [MIN_OVERFETCH, MAX_EF_SEARCH]; beyond MAX_EF_SEARCH the search is exact.
OVERFETCH_SAFETY = 2.0
MIN_OVERFETCH = 40
MAX_EF_SEARCH = 1000
# How long a measured share of the table is trusted (seconds).
SELECTIVITY_TTL = 300.0

TABLE = "learning_agentmemory"


@dataclass(frozen=True)
class Neighbour:
    id: object
    distance: float

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(v):.7g}" for v in vector) + "]"


def _scope(*, organization_id, types=None, service_id=None, role_id=None) -> tuple[list[str], list]:
    """The clauses every search and count shares: organization, activity, types, Service and Role."""
    clauses, params = ["m.organization_id = %s", "m.is_active"], [organization_id]
    if types:
        clauses.append("m.type = ANY(%s)")
        params.append(list(types))
    if service_id is not None:
        clauses.append("m.service_id = %s")
        params.append(service_id)
    if role_id is not None:
        clauses.append("m.role_id = %s")
        params.append(role_id)
    return clauses, params


def _filters(
    *, organization_id, types, embedder, service_id=None, role_id=None, indexed: bool = False
) -> tuple[str, list]:
    """WHERE clauses; `indexed` rows come from the HNSW index, which holds no NULL embedding."""
    clauses, params = _scope(organization_id=organization_id, types=types, service_id=service_id, role_id=role_id)
    if not indexed:
        clauses.append("m.embedding IS NOT NULL")
    if embedder:
        clauses.append("m.embedder = %s")
        params.append(embedder)
    return " AND ".join(clauses), params


def count_candidates(
    cursor, *, organization_id, types=None, embedder=None, cap: int, table: str = TABLE, service_id=None, role_id=None
) -> int:
    """How many rows the filters keep, counted no further than `cap`."""
    where, params = _filters(
        organization_id=organization_id, types=types, embedder=embedder, service_id=service_id, role_id=role_id
    )
    cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM {table} m WHERE {where} LIMIT %s) AS c", [*params, cap])
    return cursor.fetchone()[0]


@dataclass(frozen=True)
class Selectivity:
    candidates: int  # active rows of the organization (and types)
    total: int  # rows of the table

    @property
    def share(self) -> float:
        return min(1.0, self.candidates / self.total) if self.total else 1.0


_selectivity_cache: dict[tuple, tuple[float, Selectivity]] = {}
_selectivity_lock = threading.Lock()


def selectivity(
    cursor, *, organization_id, types=None, table: str = TABLE, service_id=None, role_id=None
) -> Selectivity:
    """The organization's (and types', Service's, Role's) share of the table, measured at most every SELECTIVITY_TTL s.

    One query: a count through the (organization, is_active, type) b-tree index and the table's
    row estimate from pg_class (the exact count when the table was never analysed).
    """
    key = (
        table,
        str(organization_id),
        tuple(sorted(types)) if types else None,
        str(service_id) if service_id is not None else None,
        str(role_id) if role_id is not None else None,
    )
    now = time.monotonic()
    with _selectivity_lock:
        cached = _selectivity_cache.get(key)
    if cached is not None and now - cached[0] < SELECTIVITY_TTL:
        return cached[1]
    clauses, params = _scope(organization_id=organization_id, types=types, service_id=service_id, role_id=role_id)
    cursor.execute(
        f"SELECT (SELECT count(*) FROM {table} m WHERE {' AND '.join(clauses)}),"
        " (SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass)",
        [*params, table],
    )
    candidates, total = cursor.fetchone()
    if total is None or total < max(candidates, 1):
        cursor.execute(f"SELECT count(*) FROM {table}")  # never analysed (or stale): count it
        total = cursor.fetchone()[0]
    found = Selectivity(candidates=int(candidates), total=int(total))
    with _selectivity_lock:
        if len(_selectivity_cache) > 10_000:
            _selectivity_cache.clear()
        _selectivity_cache[key] = (now, found)
    return found


def selectivity_forget() -> None:
    """Drop every cached share (e.g. after a bulk load)."""
    with _selectivity_lock:
        _selectivity_cache.clear()


def nearest_exact(
    cursor,
    *,
    vector,
    organization_id,
    types=None,
    embedder=None,
    limit: int,
    table: str = TABLE,
    service_id=None,
    role_id=None,
) -> list[Neighbour]:
    """Exact nearest neighbours: every filtered row's distance, sorted (the `+ 0` keeps HNSW out)."""
    where, params = _filters(
        organization_id=organization_id, types=types, embedder=embedder, service_id=service_id, role_id=role_id
    )
    cursor.execute(
        f"SELECT m.id, (m.embedding <=> %s::vector) + 0 AS distance FROM {table} m WHERE {where} "
        "ORDER BY distance, m.id LIMIT %s",
        [vector_literal(vector), *params, limit],
    )
    return [Neighbour(row[0], float(row[1])) for row in cursor.fetchall()]


def nearest_hnsw(
    cursor,
    *,
    vector,
    organization_id,
    types=None,
    embedder=None,
    limit: int,
    overfetch: int,
    table: str = TABLE,
    service_id=None,
    role_id=None,
) -> list[Neighbour]:
    """Approximate neighbours: the `overfetch` nearest of the whole table by HNSW, then filtered.

    The candidates carry the filter columns, so the filter applies to them directly (no join).
    """
    overfetch = min(max(overfetch, limit), MAX_EF_SEARCH)
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(overfetch)])
    where, params = _filters(
        organization_id=organization_id,
        types=types,
        embedder=embedder,
        service_id=service_id,
        role_id=role_id,
        indexed=True,
    )
    scope_columns = (", service_id" if service_id is not None else "") + (", role_id" if role_id is not None else "")
    cursor.execute(
        f"SELECT m.id, m.distance FROM ("
        f"  SELECT id, organization_id, is_active, type, embedder{scope_columns},"
        f"  embedding <=> %s::vector AS distance"
        f"  FROM {table} ORDER BY embedding <=> %s::vector LIMIT %s"
        f") AS m WHERE {where} ORDER BY m.distance, m.id LIMIT %s",
        [*([vector_literal(vector)] * 2), overfetch, *params, limit],
    )
    return [Neighbour(row[0], float(row[1])) for row in cursor.fetchall()]


def overfetch_for(*, limit: int, share: float) -> int:
    """HNSW candidates needed for about OVERFETCH_SAFETY * limit rows of a `share` of the table."""
    wanted = OVERFETCH_SAFETY * limit / max(share, 1e-9)
    return max(MIN_OVERFETCH, limit, math.ceil(wanted)) if wanted < 10 * MAX_EF_SEARCH else 10 * MAX_EF_SEARCH


def nearest(
    cursor,
    *,
    vector,
    organization_id,
    types=None,
    embedder=None,
    limit: int,
    exact_threshold: int = EXACT_SEARCH_THRESHOLD,
    table: str = TABLE,
    service_id=None,
    role_id=None,
) -> list[Neighbour]:
    """The `limit` nearest memories of one organization (and Service, Role), choosing exact or HNSW search as above."""
    common = {
        "vector": vector,
        "organization_id": organization_id,
        "types": types,
        "embedder": embedder,
        "service_id": service_id,
        "role_id": role_id,
    }
    found = selectivity(
        cursor, organization_id=organization_id, types=types, table=table, service_id=service_id, role_id=role_id
    )
    overfetch = overfetch_for(limit=limit, share=found.share)
    if found.candidates < exact_threshold or overfetch > MAX_EF_SEARCH:
        return nearest_exact(cursor, **common, limit=limit, table=table)
    result = nearest_hnsw(cursor, **common, limit=limit, overfetch=overfetch, table=table)
    if len(result) < limit:
        return nearest_exact(cursor, **common, limit=limit, table=table)
    return result
