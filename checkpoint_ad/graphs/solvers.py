"""The solver libraries of the graph planners, imported when a planner first needs them.

scipy (HiGHS: Checkmate's MILP and LP, the closure bound), OR-Tools (CP-SAT) and networkx
(``chen``'s articulation points) take about a second each to import. At ``import
checkpoint_ad`` every process would pay for them: every worker of an experiment, every command,
most of which never plan a graph. A planner that needs one loads it with :func:`load` before
its clock starts, so a ``time_limit`` counts the planner's own work, not a library's one-time
import.
"""
from __future__ import annotations

import importlib

NETWORKX = ("networkx",)
HIGHS = ("scipy.optimize", "scipy.sparse")
CPSAT = ("ortools.sat.python.cp_model",) + HIGHS  # CP-SAT's bound adds the closure bound's LPs
EVERY = NETWORKX + CPSAT


def load(libraries: tuple[str, ...]) -> None:
    """Import ``libraries`` (module names) now, if they are not imported yet."""
    for name in libraries:
        importlib.import_module(name)
