"""Test-wide settings: under CI, hypothesis draws the same examples every run (derandomized),
so that a landing is judged on a reproducible suite; locally it explores new examples."""
from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _no_tracemalloc_left_running() -> Iterator[None]:
    """Stop tracemalloc where a test leaves it on: a backprop whose run raises (a stage's
    shape changes, a stage writes into its input) never reaches the probe's stop, and tracing
    every later allocation made the rest of a worker's tests several times slower (resnet(40)
    planned in 9 s instead of 0.5 s after tests/chains/test_guards.py)."""
    tracing = tracemalloc.is_tracing()
    yield
    if not tracing and tracemalloc.is_tracing():
        tracemalloc.stop()


@pytest.fixture
def small_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports drawn small, for tests about what a report holds and where it goes, not its
    pixels (tests/report/test_plotting.py checks full-size figures)."""
    from checkpoint_ad import plotting
    from checkpoint_ad.report import graphs
    from helpers import draw_small
    monkeypatch.setattr(plotting, "save_png", draw_small)
    monkeypatch.setattr(graphs, "save_png", draw_small)


@pytest.fixture(scope="session", autouse=True)
def _solver_libraries_loaded() -> None:
    """The solver libraries imported once per test process, as a planner does before its clock
    starts: tests that time a planner's call from outside then time its work, not an import
    (tests/test_packaging.py checks that ``import checkpoint_ad`` does not load them)."""
    from checkpoint_ad.graphs import solvers
    solvers.load(solvers.EVERY)
