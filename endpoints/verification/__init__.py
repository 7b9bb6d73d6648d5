"""Platform verification of a design against its requirement, whoever wrote the design.

- coverage: every content phrase of the requirement is accounted for by an element of the
  interpretation, and phrases that demand a shape (a given X, a year, never, most recent, each
  month, names) are met by an element of that shape;
- realization: the SQL realizes every element (parameters bound in WHERE or HAVING, windows as date
  predicates, negations as anti-joins, rankings as ORDER BY on their measure, the grain as GROUP BY);
- meaning: tests derived from the interpretation run on live data through the Role.
"""
