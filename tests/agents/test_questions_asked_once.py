"""A user is never asked the same question twice, and 'leave it out' leaves nothing behind in the glossary.

The database is a small greenhouse (SQLite) the planner was not written against: beds, plants and their
waterings, each watering with two dates that say about as well when it happened.
"""

from __future__ import annotations

import sqlite3

import pytest

from agents.models import AgentStatus
from agents.orchestrator import _named_with_neighbour
from agents.planner.schema_index import SchemaIndex
from agents.services import execution_answer
from learning.glossary import glossary_terms
from mcpservers.services import mcp_enable
from roles.models import Engine, Role, Service
from tests.agents.planner_schemas import schema_of
from tests.agents.test_clarification import _resume, _run

pytestmark = pytest.mark.django_db(transaction=True)

TABLES = ("beds", "plants", "waterings")


@pytest.fixture(scope="module")
def greenhouse_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("greenhouse") / "greenhouse.sqlite3"
    connection = sqlite3.connect(path)
    connection.executescript(
        """
        CREATE TABLE beds (bed_id INTEGER PRIMARY KEY, label TEXT NOT NULL);
        CREATE TABLE plants (plant_id INTEGER PRIMARY KEY, common_name TEXT NOT NULL,
            bed_id INTEGER NOT NULL REFERENCES beds (bed_id), planted_on DATE);
        CREATE TABLE waterings (watering_id INTEGER PRIMARY KEY,
            plant_id INTEGER NOT NULL REFERENCES plants (plant_id), method TEXT NOT NULL,
            watered_at TIMESTAMP NOT NULL, logged_at TIMESTAMP NOT NULL, litres NUMERIC(8, 2));
        """
    )
    connection.executemany("INSERT INTO beds VALUES (?, ?)", [(i, f"Bed {i}") for i in range(1, 5)])
    connection.executemany(
        "INSERT INTO plants VALUES (?, ?, ?, ?)", [(i, f"Plant {i}", 1 + i % 4, "2026-03-01") for i in range(1, 21)]
    )
    connection.executemany(
        "INSERT INTO waterings VALUES (?, ?, ?, ?, ?, ?)",
        [
            (i, 1 + i % 20, ["soak", "mist", "drip"][i % 3], f"2026-0{1 + i % 9}-1{i % 10} 08:00:00",
             f"2026-0{1 + i % 9}-1{i % 10} 09:00:00", 1.5 + i % 4)
            for i in range(1, 61)
        ],
    )  # fmt: skip
    connection.commit()
    connection.close()
    return str(path)


@pytest.fixture
def gardener_role(org, owner, greenhouse_path):
    service = Service.objects.create(
        organization=org, name="greenhouse", engine=Engine.SQLITE, database=greenhouse_path
    )
    grants = [
        {"objectName": name, "schema": "main", "path": f"/table/{name}", "actions": ["SELECT"]} for name in TABLES
    ]
    role = Role.objects.create(organization=org, service=service, name="Gardener", permissions=grants, created_by=owner)
    mcp_enable(role=role)
    role.refresh_from_db()
    return role


def test_an_answer_that_does_not_help_ends_the_run_instead_of_asking_the_same_question_again(gardener_role, owner):
    execution = _run(gardener_role, owner, "Plants that are zorbly")
    assert execution.status == AgentStatus.WAITING, execution.status_reason
    asked = {(q["phrase"], q["text"]) for q in execution.questions}
    assert "zorbly" in {phrase for phrase, _ in asked}

    # Describing the word with itself tells the run nothing new.
    answers = {q["id"]: {"other": q["phrase"]} for q in execution.questions}
    execution = _resume(execution_answer(execution=execution, user=owner, answers=answers, enqueue=False))

    assert execution.status == AgentStatus.FAILED, execution.questions
    assert not {(q["phrase"], q["text"]) for q in execution.questions or []} & asked
    assert "'zorbly'" in execution.status_reason and "what you told me" in execution.status_reason
    for word in ("architect", "planner", "language model"):
        assert word not in execution.status_reason.lower()
    assert execution.events.filter(kind="questions").count() == 1


def test_a_word_left_out_keeps_no_date_for_its_window_in_the_glossary(gardener_role, owner):
    execution = _run(gardener_role, owner, "Soakings last month")
    assert execution.status == AgentStatus.WAITING, execution.status_reason
    meaning = next(q for q in execution.questions if any(c["mapping"]["kind"] == "ignore" for c in q["choices"]))
    dates = [q for q in execution.questions if q is not meaning and q["phrase"] == meaning["phrase"]]
    assert dates and all(c["mapping"]["kind"] == "column" for q in dates for c in q["choices"])
    answers = {meaning["id"]: next(c["id"] for c in meaning["choices"] if c["mapping"]["kind"] == "ignore")}
    answers |= {q["id"]: q["choices"][0]["id"] for q in dates}

    execution_answer(execution=execution, user=owner, answers=answers, enqueue=False)

    terms = [t for t in glossary_terms(service=gardener_role.service) if t.term == "soakings"]
    assert [t.mapping.kind for t in terms] == ["ignore"]


def test_a_word_left_out_is_accounted_for_and_not_asked_about_again(gardener_role, owner):
    execution = _run(gardener_role, owner, "Plants that are zorbly")
    question = next(q for q in execution.questions if q["phrase"] == "zorbly")
    answers = {question["id"]: next(c["id"] for c in question["choices"] if c["mapping"]["kind"] == "ignore")}

    execution = _resume(execution_answer(execution=execution, user=owner, answers=answers, enqueue=False))

    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    assert execution.events.filter(kind="questions").count() == 1
    again = _run(gardener_role, owner, "Zorbly plants")
    assert again.status == AgentStatus.COMPLETED, (again.status_reason, again.questions)


@pytest.mark.parametrize(
    ("requirement", "phrase", "asked"),
    [
        ("A seed packet by its number", "seed", "seed packet"),
        ("A seed packet by its number", "packet", "seed packet"),
        ("Seed Packets sown last spring", "Seed", "Seed Packets"),
        ("Seeds kept in a packet", "Seeds", "Seeds"),  # not side by side: the word alone
        ("A seed tray by its number", "seed", "seed"),  # no table is named so
    ],
)
def test_a_word_is_asked_about_with_its_neighbour_when_the_two_name_a_table(requirement, phrase, asked):
    schema = schema_of(
        {
            "seed_packets": {"columns": {"packet_id": "integer", "variety": "string"}, "pk": ["packet_id"]},
            "beds": {"columns": {"bed_id": "integer", "label": "string"}, "pk": ["bed_id"]},
        },
        engine="sqlite",
    )
    tables = list(SchemaIndex(schema).tables.values())
    assert _named_with_neighbour(requirement, phrase, tables) == asked
