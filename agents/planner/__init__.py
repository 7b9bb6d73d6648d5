"""Nectar's offline planner: plain-English requirement + introspected schema -> endpoint design and SQL.

See README.md in this package for how it reads a requirement and the memory content format.
"""

from .planner import Plan, PlanningError, plan_requirement

__all__ = ["Plan", "PlanningError", "plan_requirement"]
