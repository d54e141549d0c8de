"""Planners refuse what cannot fit, before allocating it; `plan` streams or refuses long plans.

The command-line cases run `python -m checkpoint_ad plan ...` in a real subprocess (a refusal
that came too late would be an out-of-memory kill or a numpy traceback there, not here): each
must exit 2 with one line on stderr and nothing on stdout. The limit is pinned with
--planner-memory where the message's numbers are checked, so they do not depend on the machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import checkpoint_ad
from checkpoint_ad.plans import limits
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.policies import check_fits, make_plan, optimal, revolve
from checkpoint_ad.errors import PlanError, PolicyError

REPO = Path(checkpoint_ad.__file__).resolve().parent.parent


def plan_command(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    return subprocess.run([sys.executable, "-m", "checkpoint_ad", "plan", *argv], env=env,
                          capture_output=True, text=True, timeout=120)


def refused(*argv: str) -> str:
    """Run ``plan ARGV``; require exit 2, nothing on stdout, one error line; return it."""
    done = plan_command(*argv)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("checkpoint-ad: error: "), done.stderr
    return lines[0]


def largest_n(line: str) -> int:
    return int(line.rsplit("the largest n that fits is ", 1)[1].replace(",", ""))


def test_optimal_tables_that_cannot_fit_are_refused_before_allocating() -> None:
    line = refused("--policy", "optimal", "--n", "100000", "--slots", "10")
    assert "policy 'optimal': planning n=100,000 with slots=10 needs about" in line
    line = refused("--policy", "optimal", "--n", "100000", "--slots", "10",
                   "--planner-memory", "1GB")
    assert "more than the planner memory limit of 1,000,000,000 bytes (as set)" in line
    fits = largest_n(line)
    assert optimal.footprint(fits, slots=10).bytes <= 10**9 < optimal.footprint(fits + 1,
                                                                                slots=10).bytes


def test_revolve_on_a_billion_stages_is_refused_not_killed() -> None:
    line = refused("--policy", "revolve", "--n", "1000000000", "--slots", "3",
                   "--planner-memory", "8GB")
    assert "policy 'revolve': planning n=1,000,000,000 with slots=3 needs about " \
           f"{revolve.footprint(10**9, 3).bytes:,} bytes" in line
    assert revolve.footprint(largest_n(line), 3).bytes <= 8 * 10**9


def test_n_is_bounded_where_it_is_parsed() -> None:
    line = refused("--policy", "revolve", "--n", "99999999999999999999")
    assert "argument --n: expected" in line and "99999999999999999999" in line


def test_planner_memory_must_be_a_positive_number_of_bytes() -> None:
    line = refused("--policy", "revolve", "--n", "5", "--planner-memory", "0")
    assert "argument --planner-memory: expected a positive number of bytes" in line


@pytest.mark.parametrize("argv, says", [
    (["--policy", "recompute_all", "--n", "1000000", "--json"],
     "this recompute_all plan has 2,999,999 steps, more than the 1,000,000 it lists at most; "
     "add --summary"),
    (["--policy", "revolve", "--n", "10000000", "--slots", "3", "--json"],
     "a plan for n=10,000,000 has at least 10,000,000 steps"),
    (["--policy", "store_all", "--n", "2000000"], "add --summary for its counts only"),
])
def test_long_plans_are_not_listed(argv: list[str], says: str) -> None:
    assert says in refused(*argv)


def test_summary_prints_the_counts_only() -> None:
    done = plan_command("--policy", "recompute_all", "--n", "400000", "--summary", "--json")
    data = json.loads(done.stdout)
    assert done.returncode == 0
    assert data["forward_evals"] == 400000 * 400001 // 2 and "actions" not in data
    assert data["counts"] == {"advance": 399999, "turn": 400000, "restore": 400000}


def test_listed_plans_stream_the_same_text_and_json() -> None:
    expected = make_plan("revolve", 40, slots=4)
    text = plan_command("--policy", "revolve", "--n", "40", "--slots", "4")
    assert text.returncode == 0
    assert text.stdout.splitlines()[:-1] == expected.describe().splitlines()
    data = json.loads(plan_command("--policy", "revolve", "--n", "40", "--slots", "4",
                                   "--json").stdout)
    assert [(a["action"], a["stage"], a["end"]) for a in data["actions"]] == [
        (s.action.value, s.stage, s.end) for s in expected]
    assert data["counts"] == expected.action_counts()


def test_every_planner_checks_itself_in_the_library() -> None:
    costs = ChainCosts.unit(200_000)
    with limits.limited(memory_bytes=10**6):
        for name in ("store_all", "recompute_all", "sqrt_n", "revolve", "optimal"):
            params = {"slots": 3} if name in ("revolve", "optimal") else {}
            with pytest.raises(PolicyError, match=f"policy '{name}': planning n=200,000"):
                make_plan(name, costs, **params)
            with pytest.raises(PolicyError, match="the largest n that fits is"):
                check_fits(name, 200_000, **params)
        with pytest.raises(PlanError, match="needs about 32,000,032 bytes for its costs alone"):
            ChainCosts.unit(10**6)
    assert check_fits("revolve", 10**5, slots=3).steps == 5 * 10**5
    assert check_fits("revolve", 5, slot=3) is None  # the planner names the unknown parameter


def test_limits_are_restored_after_the_block() -> None:
    before = limits.current()
    with limits.limited(memory_bytes=123, operations=456) as inside:
        assert limits.current() == inside and inside.memory_bytes == 123
    assert limits.current() == before
    assert before.memory_bytes == int(limits.machine_memory() * limits.MEMORY_FRACTION)
