"""Relations between rows that the general reading does not design: the planner's second reading.

- **A foreign key's own name** says what its parent is to the row: a table's key to itself
  (`employees.reports_to`, `manager_id`, `parent_id`) or to another table (`store.manager_staff_id`). The
  parent is a second instance of its table, joined along that key and named by the column's words ('report
  to', 'manager', 'parent'; a key whose words are about reporting or managing is also named by the general
  words for the one above: manager, boss, supervisor). Its naming columns are labelled with that word
  (`manager_first_name`). Parents further up are joined child-to-parent ("the city the store is in":
  store -> address -> city) when one shortest chain leads there.
- **Counted per the row above** ("managers and how many people report to each of them"): the referring rows
  grouped by the referenced instance.
- **Link tables** (rows of two foreign keys, maybe with dates): "employees who cover a territory in a given
  region" is an exists condition across the link and on up to the region; "how many territories each employee
  covers" counts the distinct far keys of the link rows per entity. A verb between the two (cover, teach) can
  only name the link itself, since a link row holds nothing else.
- **The same X more than once**: the related rows (rentals -> inventory -> film) counted per entity and X,
  each entity returned once (an exists condition with a repeated group).

Each reading is kept only when the platform's own checks pass on it (it compiles, every content word is
accounted for, every shape the wording implies is there); otherwise the general reading's answer stands.
Nothing here knows a particular database: only names, foreign keys, types and sampled values.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from endpoints.compiler import Catalog, CompileError, interpretation_compile
from endpoints.interpretation import ALIAS_PATTERN, RESERVED_PARAMETERS, Interpretation, interpretation_parse
from endpoints.verification.coverage import coverage_check, shape_check
from endpoints.verification.findings import failed

from .intent import number_value, read_phrases
from .meaning import param_type
from .schema_index import Column, ForeignKey, Key, SchemaIndex, Table
from .units import DIMENSIONS
from .vocabulary import Token, derives, name_tokens, singular, tokenize, variants, word_score

LIST_COLUMNS = 8  # a list shows the row's first eight columns (as the general reading does)
KEY_WORDS = frozenset({"id", "key", "fk", "ref", "no", "num", "code"})
GLUE_WORDS = frozenset({"to", "by", "of", "for", "at", "in"})
# The one above another in a hierarchy, whatever the table holds.
ROLE_NOUNS = frozenset({"manager", "boss", "supervisor", "superior", "head", "lead", "leader"})
HIERARCHY_WORDS = ROLE_NOUNS | {"report", "manage", "supervise", "parent"}
PEOPLE_WORDS = frozenset({"people", "person", "persons"})
REPORT_WORDS = frozenset({"report", "reports", "subordinate", "subordinates"})  # the ones below, counted
RELATIVES = frozenset({"who", "that", "which", "whose"})
ARTICLES = frozenset({"a", "an", "the", "their", "his", "her", "its", "our", "your"})
NAME_WORDS = frozenset({"name", "names"})
GIVEN_WORDS = frozenset({"given", "specific", "particular", "certain", "selected", "chosen", "specified"})
GROUP_WORDS = frozenset({"each", "every", "per"})
STATUS_WORDS = frozenset({"status", "state", "stage"})
# Superlatives of a measured dimension ("the three longest films"): the comparative naming the dimension
# (units.DIMENSIONS) and the direction, most first or least first.
EXTREMES = {
    "longest": ("longer", "desc"),
    "shortest": ("longer", "asc"),
    "heaviest": ("heavier", "desc"),
    "lightest": ("heavier", "asc"),
    "tallest": ("taller", "desc"),
    "widest": ("wider", "desc"),
    "narrowest": ("wider", "asc"),
}
PREPOSITIONS = frozenset({"in", "on", "at", "for", "from", "to", "into", "with"})
# Words of a request that say nothing by themselves (the verifier decides what must be covered).
QUIET = frozenset(
    re.findall(
        r"\w+",
        """a an the of for to in on at by with and or as from who whom whose that which this these those it its
        they them their he his she her is are was were be been being do does did have has had each every all any
        some one ones also list show give get find return display""",
    )
)


@dataclass
class Reading:
    """A design read this way: the interpretation and what to say about it."""

    interpretation: Interpretation
    shape: tuple[str, ...]
    objects: tuple[Key, ...]
    steps: list[str] = field(default_factory=list)


@dataclass
class _Words:
    requirement: str
    tokens: list[Token]
    index: SchemaIndex

    def text(self, first: int, last: int) -> str:
        """The requirement's words from token `first` to token `last` (inclusive)."""
        return self.requirement[self.tokens[first].start : self.tokens[last].end]

    def lower(self, i: int) -> str:
        return self.tokens[i].lower if 0 <= i < len(self.tokens) else ""

    def find(self, *words: str) -> int | None:
        """The first token where the words follow each other."""
        for i in range(len(self.tokens) - len(words) + 1):
            if all(self.lower(i + k) == w for k, w in enumerate(words)):
                return i
        return None


def relation_reading(*, requirement: str, index: SchemaIndex, schema: dict, dialect: str) -> Reading | None:
    """The design of a requirement about rows related through foreign keys, or None when it is not one."""
    words = _Words(requirement, tokenize(requirement), index)
    catalog = Catalog(schema)
    for read in (
        _repeat_reading,
        _self_count_reading,
        _link_count_reading,
        _link_rank_reading,
        _link_exists_reading,
        _list_reading,
    ):
        try:
            reading = read(words)
        except (ValueError, CompileError):
            reading = None
        if reading is not None and _passes_checks(requirement, reading.interpretation, catalog, dialect):
            return reading
    return None


def design_passes(requirement: str, interp: Interpretation, schema: dict, dialect: str) -> bool:
    """Whether a design compiles and passes the platform's coverage and shape checks."""
    return _passes_checks(requirement, interp, Catalog(schema), dialect)


def _passes_checks(requirement: str, interp: Interpretation, catalog: Catalog, dialect: str) -> bool:
    try:
        interpretation_compile(interp, catalog=catalog, dialect=dialect)
    except CompileError:
        return False
    findings = coverage_check(requirement=requirement, interpretation=interp)
    findings += shape_check(requirement=requirement, interpretation=interp, catalog=catalog)
    return not failed(findings)


# --- what the words name -----------------------------------------------------------------------------------


def _same(word: str, name_word: str) -> bool:
    return word_score(word, name_word) == 1.0


def _table_tokens(table: Table) -> list[str]:
    return [w for w in table.tokens if w not in ("tbl", "dim", "fact", "vw", "v", "t")] or list(table.tokens)


def _tables_at(w: _Words, i: int) -> tuple[int, Table] | None:
    """The table the words from token i name (two words first), with how many words name it."""
    for length in (2, 1):
        if i + length > len(w.tokens):
            continue
        said = [w.lower(i + k) for k in range(length)]
        if any(s in QUIET for s in said):
            continue
        found = [
            t
            for t in w.index.tables.values()
            if len(_table_tokens(t)) == length and all(_same(s, n) for s, n in zip(said, _table_tokens(t), strict=True))
        ]
        tables = [t for t in found if t.kind == "table"] or found
        if len(tables) == 1:
            return length, tables[0]
    return None


def _mentions(w: _Words) -> list[tuple[int, int, Table]]:
    """(first token, last token, table) of every table the requirement names, in order."""
    found, i = [], 0
    while i < len(w.tokens):
        hit = _tables_at(w, i)
        if hit is None:
            i += 1
            continue
        length, table = hit
        found.append((i, i + length - 1, table))
        i += length
    return found


def _counting_at(w: _Words) -> tuple[int, int] | None:
    """'how many', 'number of': the first and last token of the words that ask for a count."""
    for words_ in (("how", "many"), ("number", "of"), ("count", "of")):
        i = w.find(*words_)
        if i is not None:
            return i, i + 1
    return None


def _group_by_key_and_names(d: _Design, w: _Words, alias: str, table: Table) -> None:
    """Group by the table's key and naming columns; "with their names" is the phrase of the first name."""
    keys = list(table.primary_key)
    labels = [c.name for c in table.label_columns() if c.name not in keys]
    names = _name_at(w)
    for k, name in enumerate(keys + labels):
        phrase = w.text(names[0], names[0]) if names and k == len(keys) else ""
        d.data["group_by"].append({"column": {"entity": alias, "column": name}, "label": name, "phrase": phrase})


def _name_at(w: _Words) -> list[int]:
    return [i for i, t in enumerate(w.tokens) if t.lower in NAME_WORDS]


def _list_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns.values() if not (c.is_secret or c.is_sensitive)][:LIST_COLUMNS]


def is_link(table: Table) -> bool:
    """Rows of two foreign keys to two other tables, with nothing else but dates and a key of their own."""
    fks = [fk for fk in table.foreign_keys if fk.parent != table.key]
    if len(fks) != 2 or fks[0].parent == fks[1].parent:
        return False
    keyed = {c for fk in fks for c in fk.child_columns}
    for column in table.columns.values():
        if column.name in keyed or column.is_temporal:
            continue
        if column.primary_key and len(table.primary_key) == 1 and column.is_numeric:
            continue
        return False
    return True


def _links(index: SchemaIndex, a: Key, b: Key) -> list[tuple[Table, ForeignKey, ForeignKey]]:
    found = []
    for table in index.tables.values():
        if not is_link(table):
            continue
        fks = {fk.parent: fk for fk in table.foreign_keys if fk.parent != table.key}
        if a in fks and b in fks:
            found.append((table, fks[a], fks[b]))
    return found


def _up_paths(index: SchemaIndex, start: Key, goal: Key, *, max_steps: int = 4) -> list[list[ForeignKey]]:
    """Every shortest chain of child-to-parent keys from start to goal (more than one: the words do not say which)."""
    if start == goal:
        return [[]]
    found: list[list[ForeignKey]] = []
    queue: deque[list[ForeignKey]] = deque([[]])
    while queue:
        chain = queue.popleft()
        if found and len(chain) >= len(found[0]):
            break
        if len(chain) >= max_steps:
            continue
        node = chain[-1].parent if chain else start
        visited = {start, *(fk.parent for fk in chain)}
        for fk in index.tables[node].foreign_keys:
            if fk.parent in visited or fk.parent not in index.tables:
                continue
            if fk.parent == goal:
                found.append([*chain, fk])
            else:
                queue.append([*chain, fk])
    return found


def _statuses(table: Table) -> list[Column]:
    return [
        c
        for c in table.columns.values()
        if set(c.tokens) & STATUS_WORDS and len([v for v in c.known_values if isinstance(v, str)]) >= 2
    ]


def _given_column(table: Table, word: str) -> Column | None:
    """The column a given value of this table is compared with: named like the word, else its label, else its key."""
    named = [c for c in table.columns.values() if c.is_string and any(_same(word, t) for t in c.tokens)]
    if len(named) == 1:
        return named[0]
    label = table.label_column()
    if label is not None:
        return label
    return table.columns[table.primary_key[0]] if len(table.primary_key) == 1 else None


def _param_name(word: str) -> str:
    name = re.sub(r"[^a-z0-9_]", "_", singular(word).lower()).strip("_") or "value"
    if not name[0].isalpha():
        name = "v_" + name
    return f"{name}_value" if name in RESERVED_PARAMETERS else name[:40]


# --- building the interpretation ---------------------------------------------------------------------------


class _Design:
    """Entities with their own aliases (a table may appear twice), and the elements naming their columns."""

    def __init__(self, w: _Words) -> None:
        self.w = w
        self.entities: list[dict] = []
        self.data: dict[str, Any] = {"select": [], "group_by": [], "measures": [], "exists": [], "parameters": []}
        self.taken: set[str] = set()
        self.outputs: set[str] = set()

    def alias(self, table: Table, wanted: str = "") -> str:
        base = wanted if wanted and re.fullmatch(ALIAS_PATTERN, wanted) else ""
        base = base or "".join(t[0] for t in table.tokens if t[:1].isalpha()) or "t"
        if base in ("as", "at", "by", "do", "if", "in", "is", "no", "of", "on", "or", "to"):
            base += "_"
        alias, n = base, 2
        while alias in self.taken:
            alias, n = f"{base}{n}", n + 1
        self.taken.add(alias)
        return alias

    def object_name(self, table: Table) -> str:
        index = self.w.index
        return f"{table.schema}.{table.name}" if table.schema and table.schema != index.default_schema else table.name

    def entity(self, table: Table, *, phrase: str = "", wanted: str = "", join: dict | None = None) -> str:
        alias = self.alias(table, wanted)
        entity: dict[str, Any] = {"alias": alias, "object": self.object_name(table), "phrase": phrase}
        if join is not None:
            entity["join"] = join
        self.entities.append(entity)
        return alias

    def select(self, alias: str, column: str, *, label: str = "", phrase: str = "") -> None:
        name = label or column
        if name in self.outputs:
            return
        self.outputs.add(name)
        self.data["select"].append(
            {"column": {"entity": alias, "column": column}, "label": label if label != column else "", "phrase": phrase}
        )

    def build(self) -> Interpretation:
        return interpretation_parse({"entities": self.entities, **self.data})


def _up_join(fk: ForeignKey, to: str, *, left: bool = False) -> dict:
    """Join the parent of `fk` to the alias `to` of its child."""
    on = [[p, c] for p, c in zip(fk.parent_columns, fk.child_columns, strict=True)]
    return {"to": to, "on": on, "kind": "left" if left else "inner"}


def _down_join(fk: ForeignKey, to: str) -> dict:
    """Join the child of `fk` to the alias `to` of its parent."""
    return {"to": to, "on": [[c, p] for c, p in zip(fk.child_columns, fk.parent_columns, strict=True)]}


def _nullable(table: Table, fk: ForeignKey) -> bool:
    return any(table.columns[c].nullable for c in fk.child_columns)


def _show_entity(d: _Design, alias: str, table: Table) -> None:
    for name in _list_columns(table):
        d.select(alias, name)


# --- a foreign key's own name: the row above, a table's parents ----------------------------------------------


@dataclass
class _Role:
    fk: ForeignKey
    nouns: frozenset[str]
    verb: str | None  # "report": 'who report to', 'they report to'


def _roles(table: Table, index: SchemaIndex) -> list[_Role]:
    """What each single-column foreign key of a table says its parent is to the row, from the column's words."""
    found = []
    for fk in table.foreign_keys:
        if len(fk.child_columns) != 1 or fk.parent not in index.tables:
            continue
        parent_words = set(_table_tokens(index.tables[fk.parent]))
        own = [t for t in name_tokens(fk.child_columns[0]) if t not in KEY_WORDS | GLUE_WORDS]
        if fk.parent != table.key:
            own = [t for t in own if not any(_same(t, p) for p in parent_words)]
        if not own:
            continue
        forms = {v for t in own for v in variants(t)}
        hierarchical = bool(forms & HIERARCHY_WORDS)
        nouns = {t for t in own if not variants(t) & {"report"}}
        if hierarchical and not forms & {"parent"}:
            nouns |= ROLE_NOUNS
        found.append(_Role(fk, frozenset(nouns), "report" if forms & {"report"} or nouns & ROLE_NOUNS else None))
    return found


def key_role_words(index: SchemaIndex) -> set[str]:
    """Every word a foreign key's own name gives its parent ('manager' for reports_to), with the verb 'report'."""
    found: set[str] = set()
    for table in index.tables.values():
        for role in _roles(table, index):
            found |= set(role.nouns) | ({role.verb} if role.verb else set())
    return found


def _role_spans(w: _Words, role: _Role) -> list[tuple[int, int]]:
    """Where the requirement names the parent: 'manager', 'report to (a manager)'."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(w.tokens):
        forms = variants(w.lower(i))
        if role.verb and role.verb in forms and w.lower(i + 1) == "to":
            end = i + 1
            j = end + 1
            while w.lower(j) in ARTICLES:
                j += 1
            if variants(w.lower(j)) & role.nouns:
                end = j
            spans.append((i, end))
            i = end + 1
            continue
        if forms & role.nouns:
            spans.append((i, i))
        i += 1
    return spans


def _role_word(w: _Words, role: _Role, spans: list[tuple[int, int]]) -> str:
    """The noun the requirement uses for the parent (the alias and label prefix)."""
    for first, last in spans:
        for i in range(first, last + 1):
            if variants(w.lower(i)) & role.nouns:
                return singular(w.lower(i))
    nouns = sorted(role.nouns - ROLE_NOUNS) or sorted(role.nouns)
    return "manager" if role.verb and not (role.nouns - ROLE_NOUNS) else (nouns[0] if nouns else "parent")


def _covers(spans: list[tuple[int, int]], i: int) -> bool:
    return any(a <= i <= b for a, b in spans)


def _list_reading(w: _Words) -> Reading | None:
    """'Employees who report to a manager, with the name of the manager', 'each store's manager and its city'."""
    mentions = _mentions(w)
    if not mentions or _counting_at(w) is not None or read_phrases(w.requirement).repeats:
        return None
    first, last, entity = mentions[0]
    index = w.index
    d = _Design(w)
    root = d.entity(entity, phrase=w.text(first, last))
    _show_entity(d, root, entity)
    taken: list[tuple[int, int]] = [(a, b) for a, b, t in mentions if t is entity]
    names = _name_at(w)
    steps: list[str] = []
    shape = ["list", "join"]
    used_names: set[int] = set()
    for role in _roles(entity, index):
        spans = [s for s in _role_spans(w, role) if not any(_covers(taken, i) for i in range(s[0], s[1] + 1))]
        if not spans:
            continue
        parent = index.tables[role.fk.parent]
        word = _role_word(w, role, spans)
        before = w.lower(spans[0][0] - 1)
        inner = before in RELATIVES or not _nullable(entity, role.fk)
        inner = inner or (before in ARTICLES and w.lower(spans[0][0] - 2) in ("have", "has", "with"))
        alias = d.entity(
            parent,
            phrase=w.text(*spans[0]),
            wanted=word,
            join=_up_join(role.fk, root, left=not inner),
        )
        labels = [c.name for c in parent.label_columns()]
        if not labels:
            return None
        # "the name of the manager", "the manager's name": the naming words go with the parent.
        phrase = ""
        for n in names:
            near = [s for s in spans if 0 < s[0] - n <= 3 or 0 < n - s[1] <= 1]
            if near:
                a, b = min(n, near[0][0]), max(n, near[0][1])
                phrase, used_names = w.text(a, b), used_names | {n}
                break
        for k, name in enumerate(labels):
            d.select(alias, name, label=f"{alias}_{name}", phrase=phrase if k == 0 else "")
        taken += spans
        if parent is entity:
            shape.insert(1, "self-reference")
        steps.append(
            f"Join a second {parent.name} as {alias} on {alias}.{role.fk.parent_columns[0]} = "
            f"{root}.{role.fk.child_columns[0]} ({'only rows that have one' if inner else 'rows without one kept'})."
        )
    for a, b, table in mentions[1:]:
        if table is entity or _covers(taken, a):
            continue
        chains = _up_paths(index, entity.key, table.key)
        if len(chains) != 1 or not chains[0]:
            return None
        previous, node = root, entity
        for fk in chains[0]:
            target = index.tables[fk.parent]
            phrase = w.text(a, b) if target is table else ""
            previous = d.entity(target, phrase=phrase, join=_up_join(fk, previous, left=_nullable(node, fk)))
            node = target
        for k, column in enumerate(table.label_columns()):
            label = column.name if column.name not in d.outputs else f"{singular(table.name)}_{column.name}"
            d.select(
                previous, column.name, label=label, phrase=w.text(a, _where_clause(w, b, entity)) if k == 0 else ""
            )
        taken.append((a, b))
        steps.append(f"Join {table.name} through {' -> '.join(fk.parent[1] for fk in chains[0])}.")
    if len(d.entities) < 2:
        return None
    labels = entity.label_columns()
    for n in names:
        if n not in used_names and labels:
            # "with their names": the entity's own naming columns, shown already.
            for s in d.data["select"]:
                if s["column"] == {"entity": root, "column": labels[0].name} and not s["phrase"]:
                    s["phrase"] = w.text(n, n)
    objects = tuple(dict.fromkeys(index.tables[_key_of(d, e)].key for e in d.entities))
    return Reading(d.build(), tuple(shape), objects, steps)


def _where_clause(w: _Words, last: int, entity: Table) -> int:
    """'the city the store is in': the last token of the clause after a place that says whose place it is."""
    i = last + 1
    i += w.lower(i) in ARTICLES
    hit = _tables_at(w, i)
    if hit is None or hit[1] is not entity:
        return last
    i += hit[0]
    if w.lower(i) not in ("is", "are", "was", "were"):
        return last
    i += 1
    i += w.lower(i) in ("located", "based", "situated")
    return i if w.lower(i) in ("in", "at") else last


def _key_of(d: _Design, entity: dict) -> Key:
    name = entity["object"]
    schema, _, table = name.rpartition(".")
    return (schema or d.w.index.default_schema or "", table)


# --- counted per the row above ----------------------------------------------------------------------------


def _self_count_reading(w: _Words) -> Reading | None:
    """'Managers and how many people report to each of them': the referring rows counted per referenced row."""
    counting = _counting_at(w)
    if counting is None:
        return None
    index = w.index
    candidates = []
    for table in index.tables.values():
        for role in _roles(table, index):
            if role.fk.parent != table.key:
                continue
            spans = [s for s in _role_spans(w, role) if s[0] == s[1] and s[0] < counting[0]]
            if spans:
                candidates.append((table, role, spans[0]))
    if len(candidates) != 1:
        return None
    table, role, group_span = candidates[0]
    if _tables_at(w, group_span[0]) is not None:
        return None  # the word names a table of its own
    counted = counting[1] + 1
    said = w.lower(counted)
    person = bool(PEOPLE_WORDS & variants(said)) and len(table.label_columns()) == 2
    named = _tables_at(w, counted)
    if not (person or said in REPORT_WORDS or (named is not None and named[1] is table)):
        return None
    d = _Design(w)
    word = _role_word(w, role, [group_span])
    rows = d.entity(table, phrase=w.text(counted, counted))
    above = d.entity(table, phrase=w.text(*group_span), wanted=word, join=_up_join(role.fk, rows))
    _group_by_key_and_names(d, w, above, table)
    measure = "direct_reports" if role.verb else f"{singular(table.name)}_count"
    d.data["measures"].append({"id": measure, "func": "count", "entity": rows, "phrase": w.text(counting[0], counted)})
    steps = [
        f"Count {table.name} rows per {word} ({above}), joining a second {table.name} on "
        f"{above}.{role.fk.parent_columns[0]} = {rows}.{role.fk.child_columns[0]}."
    ]
    return Reading(d.build(), ("aggregate", "self-reference"), (table.key,), steps)


# --- link tables ------------------------------------------------------------------------------------------


def _link_verb(w: _Words, taken: list[tuple[int, int]], between: tuple[int, int]) -> tuple[int, int] | None:
    """The one word (or two) left between or around two linked tables: the verb that names the link."""
    left = [
        i
        for i in range(max(0, between[0] - 1), min(len(w.tokens), between[1] + 2))
        if not _covers(taken, i) and w.lower(i) not in QUIET | NAME_WORDS | GIVEN_WORDS and not w.tokens[i].is_number
    ]
    if not left or len(left) > 2 or left[-1] - left[0] != len(left) - 1:
        return None
    for i in left:
        word = w.lower(i)
        if _tables_at(w, i) is not None:
            return None
        for table in w.index.tables.values():
            for column in table.columns.values():
                if any(_same(word, t) for t in column.tokens) or any(
                    isinstance(v, str) and v.lower() == word for v in column.known_values
                ):
                    return None  # a column or a value of the data, not the link
    return left[0], left[-1]


def _link_count_reading(w: _Words) -> Reading | None:
    """'How many territories each employee covers': the distinct far keys of the link rows, per entity."""
    counting = _counting_at(w)
    if counting is None:
        return None
    far = _tables_at(w, counting[1] + 1)
    group = next(
        ((i, _tables_at(w, i + 1)) for i, t in enumerate(w.tokens) if t.lower in GROUP_WORDS and _tables_at(w, i + 1)),
        None,
    )
    if far is None or group is None:
        return None
    (far_len, far_table), (at, (group_len, entity)) = far, group
    links = _links(w.index, entity.key, far_table.key)
    if len(links) != 1 or entity is far_table:
        return None
    link, to_entity, to_far = links[0]
    far_span = (counting[1] + 1, counting[1] + far_len)
    group_span = (at, at + group_len)
    taken = [counting, far_span, group_span]
    verb = _link_verb(w, taken, (min(far_span[0], group_span[0]), max(far_span[1], group_span[1])))
    d = _Design(w)
    root = d.entity(link, phrase=w.text(*verb) if verb else "")
    alias = d.entity(entity, phrase=w.text(*group_span), join=_up_join(to_entity, root))
    _group_by_key_and_names(d, w, alias, entity)
    d.data["measures"].append(
        {
            "id": f"{singular(far_table.name)}_count",
            "func": "count_distinct",
            "column": {"entity": root, "column": to_far.child_columns[0]},
            "phrase": w.text(counting[0], far_span[1]),
        }
    )
    steps = [f"Count the distinct {to_far.child_columns[0]} of {link.name} per {singular(entity.name)}."]
    return Reading(d.build(), ("aggregate", "join"), (link.key, entity.key), steps)


def _rank_number(w: _Words, i: int) -> float | None:
    """The number token i says ("five", "5"), or None."""
    return number_value(w.lower(i)) if 0 <= i < len(w.tokens) else None


def _link_rank_reading(w: _Words) -> Reading | None:
    """'Which five actors appear in the most films?': the far rows of each entity counted through the link, most
    first, as many as the number says (a singular entity: the one with the most).

    Only 'the most': 'the fewest' would have to count the entities with no link row at all, which rows of the
    link cannot show.
    """
    if _counting_at(w) is not None:
        return None
    sup = next((i for i in range(1, len(w.tokens)) if w.lower(i - 1) == "the" and w.lower(i) == "most"), None)
    far_hit = _tables_at(w, sup + 1) if sup is not None else None
    mentions = _mentions(w)
    if sup is None or far_hit is None or not mentions or mentions[0][0] >= sup:
        return None
    first, last, entity = mentions[0]
    far_len, far = far_hit
    links = _links(w.index, entity.key, far.key)
    if len(links) != 1 or entity is far:
        return None
    said = w.lower(last)
    n = _rank_number(w, first - 1)
    if n is None and singular(said) != said:
        return None  # "Which actors appear in the most films": how many is not said
    link, to_entity, to_far = links[0]
    far_span = (sup + 1, sup + far_len)
    taken = [(first - (n is not None), last), (sup - 1, far_span[1])]
    verb = _link_verb(w, taken, (last + 1, sup - 2))
    d = _Design(w)
    root = d.entity(link, phrase=w.text(*verb) if verb else "")
    alias = d.entity(entity, phrase=w.text(first, last), join=_up_join(to_entity, root))
    _group_by_key_and_names(d, w, alias, entity)
    measure = f"{singular(far.name)}_count"
    d.data["measures"].append(
        {
            "id": measure,
            "func": "count_distinct",
            "column": {"entity": root, "column": to_far.child_columns[0]},
            "phrase": w.text(*far_span),
        }
    )
    d.data["order_by"] = [{"measure": measure, "direction": "desc", "phrase": w.text(sup - 1, far_span[1])}]
    d.data["limit"] = {"n": int(n or 1), "phrase": w.text(first - 1, first - 1) if n is not None else ""}
    steps = [
        f"Count the distinct {to_far.child_columns[0]} of {link.name} per {singular(entity.name)}, "
        f"most first, {int(n or 1)} row(s)."
    ]
    return Reading(d.build(), ("ranking", "aggregate", "join"), (link.key, entity.key), steps)


def _extreme_column(entity: Table, dimension: str) -> Column:
    """The entity's one numeric column of the dimension ('length' for longer), the nearest word first."""
    for noun in DIMENSIONS[dimension]:
        named = [c for c in entity.columns.values() if c.is_numeric and not c.primary_key and noun in c.tokens]
        if len(named) > 1:
            raise ValueError(f"{', '.join(c.name for c in named)} could each be the {noun}")
        if named:
            return named[0]
    raise ValueError(f"no column of {entity.name} measures what '{dimension}' compares")


def _read_extreme(w: _Words, d: _Design, first: int, root: str, entity: Table) -> int:
    """'The three longest films': the entity's rows ordered by the column the superlative measures, cut at the
    number; the first token of those words (`first` when there are none). Without a number it is not read."""
    said = w.lower(first - 1)
    if said not in EXTREMES:
        return first
    n = _rank_number(w, first - 2)
    if n is None:
        raise ValueError(f"'{said}': how many rows is not said")
    dimension, direction = EXTREMES[said]
    column = _extreme_column(entity, dimension)
    d.select(root, column.name)
    if column.nullable:
        # a row without the measure is not among the longest (PostgreSQL puts NULLs first when descending)
        d.data.setdefault("filters", []).append({"column": {"entity": root, "column": column.name}, "op": "not_null"})
    d.data["order_by"] = [
        {
            "column": {"entity": root, "column": column.name},
            "direction": direction,
            "phrase": w.text(first - 1, first - 1),
        }
    ]
    d.data["limit"] = {"n": int(n), "phrase": w.text(first - 2, first - 2)}
    return first - 2


def _value_before(w: _Words, i: int, table: Table) -> tuple[Column, str] | None:
    """'the Comedy category': the one string column of the table holding the word before it as a value."""
    said = w.lower(i - 1)
    found = [
        (c, v)
        for c in table.columns.values()
        if c.is_string
        for v in c.known_values
        if isinstance(v, str) and v.lower() == said
    ]
    return found[0] if len(found) == 1 else None


def _link_exists_reading(w: _Words) -> Reading | None:
    """'Employees who cover a territory in a given region': entities with a linked row (up to a given value)."""
    if _counting_at(w) is not None:
        return None
    mentions = _mentions(w)
    if len(mentions) < 2:
        return None
    first, last, entity = mentions[0]
    found = [(a, b, t) for a, b, t in mentions[1:] if len(_links(w.index, entity.key, t.key)) == 1]
    if len(found) != 1:
        return None
    x_first, x_last, far = found[0]
    link, to_entity, to_far = _links(w.index, entity.key, far.key)[0]
    given: tuple[int, int, Table] | None = None
    rest = [(a, b, t) for a, b, t in mentions[1:] if t is not entity and a != x_first]
    for a, b, t in rest:
        if w.lower(a - 1) not in GIVEN_WORDS or given is not None:
            return None
        given = (a, b, t)
    if given is None and w.lower(x_first - 1) in GIVEN_WORDS:
        given = (x_first, x_last, far)
    value = _value_before(w, x_first, far) if given is None else None
    chain: list[ForeignKey] = []
    if given is not None and given[2] is not far:
        chains = _up_paths(w.index, far.key, given[2].key, max_steps=3)
        if len(chains) != 1:
            return None
        chain = chains[0]
    taken = [(first, last), (x_first, x_last)] + ([(given[0] - 2, given[1])] if given else [])
    taken += [(x_first - 1, x_first - 1)] if value else []
    verb = _link_verb(w, taken, (last + 1, x_first - 1 - (value is not None)))
    d = _Design(w)
    root = d.entity(entity, phrase=w.text(first, last))
    _show_entity(d, root, entity)
    _read_extreme(w, d, first, root, entity)
    taken_aliases = set(d.taken)
    chain_entities: list[dict] = []

    def add(table: Table, join: dict, phrase: str) -> str:
        alias = d.alias(table)
        taken_aliases.add(alias)
        chain_entities.append({"alias": alias, "object": d.object_name(table), "phrase": phrase, "join": join})
        return alias

    link_alias = add(link, _down_join(to_entity, root), w.text(*verb) if verb else "")
    previous = add(far, _up_join(to_far, link_alias), w.text(x_first, x_last))
    for fk in chain:
        target = w.index.tables[fk.parent]
        previous = add(
            target, _up_join(fk, previous), w.text(given[0], given[1]) if given and target is given[2] else ""
        )
    exists: dict[str, Any] = {"negated": False, "from": root, "entities": chain_entities, "filters": []}
    start = verb[0] if verb else x_first
    end = x_last
    if value is not None:
        column, held = value
        start = min(start, x_first - 1)
        exists["filters"].append(
            {
                "column": {"entity": previous, "column": column.name},
                "op": "eq",
                "value": held,
                "phrase": w.text(x_first - 1, x_last),
            }
        )
    if given is not None:
        column = _given_column(given[2], w.lower(given[1]))
        if column is None:
            return None
        name = _param_name(w.lower(given[1]))
        phrase = w.text(given[0] - 1 - (w.lower(given[0] - 2) in ARTICLES), given[1])
        exists["filters"].append(
            {"column": {"entity": previous, "column": column.name}, "op": "eq", "param": name, "phrase": phrase}
        )
        values = sorted({v for v in column.known_values if isinstance(v, str)})
        spec: dict[str, Any] = {"name": name, "type": param_type(column), "required": True, "phrase": phrase}
        if values and len(values) <= 20 and len(values) == len(column.known_values):
            spec["enum"] = values
        d.data["parameters"].append(spec)
        end = max(end, given[1])
    exists["phrase"] = w.text(start, end)
    d.data["exists"].append(exists)
    steps = [
        f"Keep {entity.name} with a {far.name} row through {link.name}"
        + (f" whose {given[2].name} is the given one." if given else ".")
    ]
    objects = (entity.key, link.key, far.key, *(fk.parent for fk in chain))
    return Reading(d.build(), ("list", "join"), tuple(dict.fromkeys(objects)), steps)


# --- the same X more than once ----------------------------------------------------------------------------


def _verb_tables(w: _Words, i: int, entity: Table) -> list[Table]:
    """Tables a verb names ('rented' -> rental, 'ordered' -> orders) whose rows belong to the entity."""
    word = w.lower(i)
    return [
        t
        for t in w.index.tables.values()
        if t is not entity
        and t.kind == "table"
        and any(derives(word, n) or _same(word, n) for n in t.tokens)
        and w.index.up_path(t.key, entity.key)
    ]


def _repeat_reading(w: _Words) -> Reading | None:
    """'Customers who rented the same film more than once': the rows counted per entity and film."""
    repeats = read_phrases(w.requirement).repeats
    if len(repeats) != 1:
        return None
    repeat = repeats[0]
    end = next((i for i, t in enumerate(w.tokens) if t.start >= repeat.span[0]), None)
    same = w.find("same")
    if end is None or same is None:
        return None
    hit = _tables_at(w, same + 1)
    if hit is None or same + 1 + hit[0] != end:
        return None
    target = hit[1]
    mentions = _mentions(w)
    if not mentions or mentions[0][2] is target:
        return None
    first, last, entity = mentions[0]
    verb = same - 1 - (w.lower(same - 1) == "the")
    if w.lower(verb) in PREPOSITIONS:
        verb -= 1  # "enrolled in the same course"
    if verb <= last:
        return None
    # the nearest table the verb names: 'ordered' is the orders, not their lines
    tables = sorted((len(w.index.up_path(t.key, entity.key) or []), t.name, t) for t in _verb_tables(w, verb, entity))
    if not tables or (len(tables) > 1 and tables[0][0] == tables[1][0]):
        return None
    named = tables[0][2]
    counted = [named] if w.index.up_path(named.key, target.key) else []
    if not counted:
        counted = [
            w.index.tables[fk.child]
            for fk in w.index.children(named.key)
            if fk.child in w.index.tables and w.index.up_path(fk.child, target.key)
        ]
    if len(counted) != 1 or _statuses(named) or _statuses(counted[0]):
        return None
    rows = counted[0]
    down = w.index.up_path(rows.key, entity.key) or []
    up = _up_paths(w.index, rows.key, target.key)
    if not down or len(up) != 1:
        return None
    d = _Design(w)
    root = d.entity(entity, phrase=w.text(first, last))
    _show_entity(d, root, entity)
    chain_entities: list[dict] = []
    previous = root
    for fk in reversed(down):
        table = w.index.tables[fk.child]
        alias = d.alias(table)
        phrase = w.text(verb, verb) if table is named else ""
        chain_entities.append(
            {"alias": alias, "object": d.object_name(table), "phrase": phrase, "join": _down_join(fk, previous)}
        )
        previous = alias
    for fk in up[0][:-1]:
        table = w.index.tables[fk.parent]
        alias = d.alias(table)
        chain_entities.append(
            {"alias": alias, "object": d.object_name(table), "phrase": "", "join": _up_join(fk, previous)}
        )
        previous = alias
    last_fk = up[0][-1]
    per = [{"entity": previous, "column": c} for c in last_fk.child_columns]
    phrase = w.requirement[w.tokens[same - (w.lower(same - 1) == "the")].start : repeat.span[1]]
    d.data["exists"].append(
        {
            "negated": False,
            "from": root,
            "entities": chain_entities,
            "repeated": {"per": per, "op": repeat.op, "value": int(repeat.value), "phrase": phrase},
            "phrase": w.requirement[w.tokens[verb].start : repeat.span[1]],
        }
    )
    steps = [
        f"Keep {entity.name} with {rows.name} rows sharing one {', '.join(last_fk.child_columns)} "
        f"{'more than' if repeat.op == 'gt' else 'at least'} {int(repeat.value)} time(s)."
    ]
    objects = (entity.key, *(fk.child for fk in down), *(fk.parent for fk in up[0][:-1]))
    return Reading(d.build(), ("list", "join"), tuple(dict.fromkeys(objects)), steps)


__all__ = ["Reading", "design_passes", "is_link", "key_role_words", "relation_reading"]
