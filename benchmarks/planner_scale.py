"""How the planners scale: revolve on long chains, the optimal DP on heterogeneous ones.

(a) revolve with 100 slots for n = 10^4, 10^5, 10^6 unit stages: the time to build the plan
    (median of ``--repeats`` untraced runs) and its peak memory (tracemalloc, one more run),
    next to the time ``check_plan`` takes to validate it (the executor validates every plan it
    runs, so this is paid per run too). Goals: n = 10^6 plans in under 2 s; memory grows at
    most linearly in n (bytes per stage do not grow).
(b) the ``optimal`` DP (``budget_bytes`` at the planner's default resolution, printed as
    "units": the free memory is counted in at most that many units) for n = 100, 200, 500
    heterogeneous stages: compute costs, state sizes and tape sizes drawn from a fixed seed,
    planned at 20 budgets spaced geometrically from "x_0 plus the largest tape" to "everything
    held". Each budget is a separate ``make_plan`` call (the DP and the plan rebuild); memory is
    tracemalloc's peak during the call (numpy's tables included; tracing costs nothing visible
    here, the DP making only O(n) large allocations). Goal: n = 500 in under 10 s for all 20.

Planners are pure functions, so everything runs in this one process. Not a test: nothing is
asserted; the goal columns only report.

    PYTHONPATH=. python benchmarks/planner_scale.py                   # full, under a minute
    PYTHONPATH=. python benchmarks/planner_scale.py --optimal-n 100 200 --levels 5
"""
from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from checkpoint_ad.chains.plans import ChainCosts, check_plan
from checkpoint_ad.chains.policies import make_plan

MIB = 2.0 ** 20
REVOLVE_GOAL_S, OPTIMAL_GOAL_S = 2.0, 10.0


def traced_peak(function: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``function`` under tracemalloc: its result, seconds, and peak bytes over the start."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    return result, seconds, peak


def median_seconds(function: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def revolve_rows(sizes: list[int], slots: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        costs = ChainCosts.unit(n)
        build = lambda: make_plan("revolve", costs, slots=slots)  # noqa: E731
        seconds = median_seconds(build, repeats)
        plan, _, peak = traced_peak(build)
        start = time.perf_counter()
        counts = check_plan(plan)
        check = time.perf_counter() - start
        rows.append({"n": n, "seconds": seconds, "peak": peak, "steps": len(plan),
                     "evaluations": counts.forward_evals, "check": check})
        del plan
    return rows


def heterogeneous_costs(n: int, seed: int = 0) -> ChainCosts:
    """Random whole-number compute costs 1..100 (relative, like a multiply-add count), state
    sizes of 1 KiB..1 MiB, and held tapes of the output plus up to twice as much again."""
    generator = np.random.default_rng(seed)
    compute = tuple(float(u) for u in generator.integers(1, 101, n))
    states = tuple(int(a) for a in generator.integers(1 << 10, 1 << 20, n + 1))
    tapes = tuple(int(a + extra) for a, extra in
                  zip(states[1:], generator.integers(0, 2 * np.array(states[1:]) + 1)))
    return ChainCosts(n, compute, states, tapes)


def budget_levels(costs: ChainCosts, levels: int) -> list[int]:
    """``levels`` budgets in bytes, geometric from x_0 plus the largest tape to all tapes held."""
    low = costs.state_bytes[0] + max(costs.tape_bytes)
    high = costs.state_bytes[0] + sum(costs.tape_bytes)
    return [int(b) for b in np.geomspace(low, high, levels)]


def optimal_rows(sizes: list[int], levels: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        costs = heterogeneous_costs(n)
        times, peaks, evaluations, resolutions = [], [], [], set()
        for budget in budget_levels(costs, levels):
            plan, seconds, peak = traced_peak(
                lambda: make_plan("optimal", costs, budget_bytes=budget))
            times.append(seconds)
            peaks.append(peak)
            evaluations.append(plan.forward_evals)
            resolutions.add(dict(plan.params).get("resolution"))
        rows.append({"n": n, "levels": levels, "total": sum(times), "mean": statistics.mean(times),
                     "slowest": max(times), "peak": max(peaks),
                     "evaluations": (max(evaluations), min(evaluations)),
                     "resolution": "/".join(sorted(map(str, resolutions)))})
    return rows


def yes(condition: bool) -> str:
    return "yes" if condition else "NO"


def print_revolve(rows: list[dict[str, Any]], slots: int) -> None:
    print(f"(a) revolve, {slots} slots: plan build (median) and peak memory (tracemalloc)")
    print(f"{'n':>9}{'steps':>10}{'evals':>10}{'build s':>9}{'peak MiB':>10}{'B/stage':>9}"
          f"{'check s':>9}  goal")
    first = rows[0]
    for row in rows:
        per_stage = row["peak"] / row["n"]
        goals = []
        if row["n"] >= 10 ** 6:
            goals.append(f"<{REVOLVE_GOAL_S:g} s: {yes(row['seconds'] < REVOLVE_GOAL_S)}")
        if row is not first:
            # linear or less: bytes per stage do not grow (25% slack for array over-allocation)
            goals.append(f"linear memory: {yes(per_stage <= 1.25 * first['peak'] / first['n'])}")
        print(f"{row['n']:>9}{row['steps']:>10}{row['evaluations']:>10}{row['seconds']:>9.3f}"
              f"{row['peak'] / MIB:>10.1f}{per_stage:>9.1f}{row['check']:>9.3f}  {', '.join(goals)}")


def print_optimal(rows: list[dict[str, Any]]) -> None:
    print(f"\n(b) optimal DP, heterogeneous stages, budget_bytes at {rows[0]['levels']} levels "
          f"(each level one make_plan call)")
    print(f"{'n':>5}{'units':>6}{'total s':>9}{'mean s':>8}{'max s':>8}{'peak MiB':>10}"
          f"{'evals (max..min)':>18}  goal")
    for row in rows:
        goal = (f"n=500 all levels <{OPTIMAL_GOAL_S:g} s: {yes(row['total'] < OPTIMAL_GOAL_S)}"
                if row["n"] == 500 else "")
        evals = f"{row['evaluations'][0]}..{row['evaluations'][1]}"
        print(f"{row['n']:>5}{row['resolution']:>6}{row['total']:>9.2f}{row['mean']:>8.3f}{row['slowest']:>8.3f}"
              f"{row['peak'] / MIB:>10.1f}{evals:>18}  {goal}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revolve-n", type=int, nargs="*", default=[10 ** 4, 10 ** 5, 10 ** 6])
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--optimal-n", type=int, nargs="*", default=[100, 200, 500])
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="timed revolve builds per n")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.revolve_n:
        print_revolve(revolve_rows(args.revolve_n, args.slots, args.repeats), args.slots)
    if args.optimal_n:
        print_optimal(optimal_rows(args.optimal_n, args.levels))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
