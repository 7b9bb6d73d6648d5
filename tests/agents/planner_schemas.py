"""Small schemas in the introspection shape, in vocabularies the planner was not written against.

Each table is {"columns": {name: type}, "pk": [...], "fks": {column: "table.column"}, "values": {column: [...]}};
types are json types ("integer", "number", "string", "date", "date-time"). Nothing here needs a database:
the planner reads only the catalog and the values the explorer would have sampled.
"""

from __future__ import annotations

from typing import Any

JSON = {
    "integer": ("INTEGER", "integer", None),
    "number": ("NUMERIC(12, 2)", "number", "decimal"),
    "string": ("TEXT", "string", None),
    "date": ("DATE", "string", "date"),
    "date-time": ("TIMESTAMP", "string", "date-time"),
    "boolean": ("BOOLEAN", "boolean", None),
}


def schema_of(tables: dict[str, dict[str, Any]], *, engine: str = "postgresql") -> dict:
    objects = []
    for name, spec in tables.items():
        columns = []
        for column, kind in spec["columns"].items():
            sql_type, json_type, fmt = JSON[kind]
            columns.append(
                {
                    "name": column,
                    "type": sql_type,
                    "json_type": json_type,
                    "format": fmt,
                    "nullable": column not in spec.get("pk", []),
                    "primary_key": column in spec.get("pk", []),
                    "enum": None,
                    "samples": list(spec.get("values", {}).get(column, [])),
                    **({"comment": spec["comments"][column]} if column in spec.get("comments", {}) else {}),
                }
            )
        objects.append(
            {
                "schema": "public",
                "name": name,
                "kind": spec.get("kind", "table"),
                "columns": columns,
                "primary_key": list(spec.get("pk", [])),
                "foreign_keys": [
                    {
                        "columns": [column],
                        "ref_schema": "public",
                        "ref_table": target.split(".")[0],
                        "ref_columns": [target.split(".")[1]],
                    }
                    for column, target in spec.get("fks", {}).items()
                ],
                "indexes": [],
                "row_count": 100,
                **({"definition": spec["definition"]} if spec.get("definition") else {}),
                **({"comment": spec["comment"]} if spec.get("comment") else {}),
            }
        )
    return {"engine": engine, "default_schema": "public", "objects": objects}


HR = schema_of(
    {
        "departments": {
            "columns": {"department_id": "integer", "name": "string", "location": "string"},
            "pk": ["department_id"],
            "values": {"location": ["Berlin", "Lisbon", "Austin"], "name": ["Finance", "Engineering", "Sales"]},
        },
        "employees": {
            "columns": {
                "employee_id": "integer",
                "first_name": "string",
                "last_name": "string",
                "email": "string",
                "department_id": "integer",
                "manager_id": "integer",
                "hired_on": "date",
                "salary": "number",
                "grade": "string",
            },
            "pk": ["employee_id"],
            "fks": {"department_id": "departments.department_id", "manager_id": "employees.employee_id"},
            "values": {"grade": ["junior", "senior", "principal"]},
        },
        "leave_requests": {
            "columns": {
                "request_id": "integer",
                "employee_id": "integer",
                "kind": "string",
                "state": "string",
                "starts_on": "date",
                "days": "integer",
            },
            "pk": ["request_id"],
            "fks": {"employee_id": "employees.employee_id"},
            "values": {"kind": ["vacation", "sick", "parental"], "state": ["pending", "approved", "rejected"]},
        },
    }
)

CLINIC = schema_of(
    {
        "patients": {
            "columns": {
                "patient_id": "integer",
                "full_name": "string",
                "insurer": "string",
                "born_on": "date",
                "phone": "string",
            },
            "pk": ["patient_id"],
            "values": {"insurer": ["Acme Health", "Blue Shield", "none"]},
        },
        "doctors": {
            "columns": {"doctor_id": "integer", "full_name": "string", "specialty": "string"},
            "pk": ["doctor_id"],
            "values": {"specialty": ["cardiology", "dermatology", "pediatrics"]},
        },
        "appointments": {
            "columns": {
                "appointment_id": "integer",
                "patient_id": "integer",
                "doctor_id": "integer",
                "scheduled_at": "date-time",
                "status": "string",
                "minutes": "integer",
                "fee": "number",
            },
            "pk": ["appointment_id"],
            "fks": {"patient_id": "patients.patient_id", "doctor_id": "doctors.doctor_id"},
            "values": {"status": ["booked", "attended", "no_show", "cancelled"]},
        },
    }
)

LOGISTICS = schema_of(
    {
        "depots": {
            "columns": {"depot_id": "integer", "city": "string", "country": "string"},
            "pk": ["depot_id"],
            "values": {"city": ["Rotterdam", "Hamburg"], "country": ["NL", "DE"]},
        },
        "vehicles": {
            "columns": {"vehicle_id": "integer", "plate": "string", "depot_id": "integer", "capacity_kg": "integer"},
            "pk": ["vehicle_id"],
            "fks": {"depot_id": "depots.depot_id"},
        },
        "shipments": {
            "columns": {
                "shipment_id": "integer",
                "vehicle_id": "integer",
                "dispatched_at": "date-time",
                "weight_kg": "number",
                "state": "string",
            },
            "pk": ["shipment_id"],
            "fks": {"vehicle_id": "vehicles.vehicle_id"},
            "values": {"state": ["in_transit", "delivered", "lost"]},
        },
    }
)

# A school: a teacher's key to their own supervisor, a link table between teachers and courses, a campus
# whose dean is a teacher, and enrolments of students in sections of courses.
SCHOOL = schema_of(
    {
        "countries": {
            "columns": {"country_id": "integer", "country_name": "string"},
            "pk": ["country_id"],
        },
        "cities": {
            "columns": {"city_id": "integer", "city_name": "string", "country_id": "integer"},
            "pk": ["city_id"],
            "fks": {"country_id": "countries.country_id"},
        },
        "teachers": {
            "columns": {
                "teacher_id": "integer",
                "first_name": "string",
                "last_name": "string",
                "email": "string",
                "supervisor_id": "integer",
                "hired_on": "date",
            },
            "pk": ["teacher_id"],
            "fks": {"supervisor_id": "teachers.teacher_id"},
        },
        "campuses": {
            "columns": {
                "campus_id": "integer",
                "campus_name": "string",
                "dean_teacher_id": "integer",
                "city_id": "integer",
            },
            "pk": ["campus_id"],
            "fks": {"dean_teacher_id": "teachers.teacher_id", "city_id": "cities.city_id"},
            "values": {"campus_name": ["North", "Riverside", "Old Town"]},
        },
        "courses": {
            "columns": {"course_id": "integer", "title": "string", "campus_id": "integer", "credits": "integer"},
            "pk": ["course_id"],
            "fks": {"campus_id": "campuses.campus_id"},
        },
        "course_teachers": {
            "columns": {"teacher_id": "integer", "course_id": "integer", "assigned_on": "date"},
            "pk": ["teacher_id", "course_id"],
            "fks": {"teacher_id": "teachers.teacher_id", "course_id": "courses.course_id"},
        },
        "students": {
            "columns": {"student_id": "integer", "first_name": "string", "last_name": "string"},
            "pk": ["student_id"],
        },
        "sections": {
            "columns": {"section_id": "integer", "course_id": "integer", "term": "string"},
            "pk": ["section_id"],
            "fks": {"course_id": "courses.course_id"},
            "values": {"term": ["spring", "autumn"]},
        },
        "enrolments": {
            "columns": {
                "enrolment_id": "integer",
                "student_id": "integer",
                "section_id": "integer",
                "enrolled_on": "date",
            },
            "pk": ["enrolment_id"],
            "fks": {"student_id": "students.student_id", "section_id": "sections.section_id"},
        },
    }
)

# Hiking trails: a link table between trails and the tags they carry, and a trail's length in kilometres.
TRAILS = schema_of(
    {
        "trails": {
            "columns": {
                "trail_id": "integer",
                "name": "string",
                "difficulty": "string",
                "length_km": "number",
                "opened_on": "date",
            },
            "pk": ["trail_id"],
            "values": {"difficulty": ["easy", "hard"]},
        },
        "tags": {
            "columns": {"tag_id": "integer", "label": "string"},
            "pk": ["tag_id"],
            "values": {"label": ["Coastal", "Forest", "Alpine"]},
        },
        "trail_tags": {
            "columns": {"trail_id": "integer", "tag_id": "integer"},
            "pk": ["trail_id", "tag_id"],
            "fks": {"trail_id": "trails.trail_id", "tag_id": "tags.tag_id"},
        },
    }
)
