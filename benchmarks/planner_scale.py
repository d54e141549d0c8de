"""How the planners scale: revolve on long chains, the optimal DP on heterogeneous ones.

(a) revolve with 100 slots for n = 10^4, 10^5, 10^6 unit stages: the time to build the plan
    (median of ``--repeats`` untraced runs) and its peak memory (tracemalloc, one more run),
    next to the time ``check_plan`` takes to validate it (the executor validates every plan it
    runs, so this is paid per run too). Goals: n = 10^6 plans in under 2 s; memory grows at
    most linearly in n (bytes per stage do not grow).
(b) the ``optimal`` DP for n = 100, 200, 500, 1000 heterogeneous stages: compute costs, state
    sizes and tape sizes drawn from a fixed seed, planned at 20 budgets spaced geometrically from
    "x_0 plus the largest tape" to "everything held". *sweep*: the 20 ``make_plan`` calls as a lab
    sweep makes them: the first fills the chain's one table over the default number of geometric
    memory levels ("levels"), every budget is read from it (the time is the total, wall and CPU, of
    a run without tracemalloc; memory tracemalloc's peak in a second run, numpy's tables included).
    *per budget*: each budget solved alone in as many even units of its own free bytes
    (``OptimalTable.solve(costs, budget, unit_bytes=...)``: the finest that many levels give one
    budget; ``--alone-units`` names another count), for the sizes in ``--per-budget-n``. "worst" is
    the largest ratio of the sweep's forward evaluations to the per-budget solve's, over the 20
    budgets: what sharing one table costs in plan quality. Goals: the sweep of 20 budgets in under
    2 s at n = 500 and under 10 s at n = 1000.

Planners are pure functions, so everything runs in this one process. Not a test: nothing is
asserted; the goal columns only report.

    PYTHONPATH=. python benchmarks/planner_scale.py                   # full, about a minute
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

from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.plans import check_plan
from checkpoint_ad.chains.policies import make_plan
from checkpoint_ad.chains.policies.optimal_table import OptimalTable, clear_cache

MIB = 2.0 ** 20
REVOLVE_GOAL_S = 2.0
SWEEP_GOALS_S = {500: 2.0, 1000: 10.0}  # n -> seconds for all budgets from one solve


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


def sweep_row(costs: ChainCosts, budgets: list[int]) -> dict[str, Any]:
    """Every budget through the policy, as a sweep makes them: one table, then lookups. Timed
    untraced (tracemalloc slows every allocation it sees), then run again under tracemalloc for
    the peak."""
    def sweep() -> list[Any]:
        clear_cache()
        return [make_plan("optimal", costs, store_budget_bytes=budget) for budget in budgets]

    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    plans = sweep()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = traced_peak(sweep)[2]
    clear_cache()
    return {"total": seconds, "cpu": cpu, "peak": peak,
            "evaluations": [plan.forward_evals for plan in plans],
            "units": dict(plans[0].params)["resolution"]}


def per_budget_row(costs: ChainCosts, budgets: list[int], units: int) -> dict[str, Any]:
    """Each budget solved alone, its own free bytes divided into ``units`` even units."""
    times, peaks, evaluations = [], [], []
    for budget in budgets:
        unit = -(-(budget - costs.state_bytes[0]) // units)
        plan, seconds, peak = traced_peak(
            lambda: OptimalTable.solve(costs, budget, unit_bytes=unit).plan(budget))
        times.append(seconds)
        peaks.append(peak)
        evaluations.append(plan.forward_evals)
    return {"total": sum(times), "peak": max(peaks), "evaluations": evaluations}


def optimal_rows(sizes: list[int], levels: int, per_budget: list[int],
                 alone_units: int | None) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        costs = heterogeneous_costs(n)
        budgets = budget_levels(costs, levels)
        row = {"n": n, "levels": levels, "sweep": sweep_row(costs, budgets)}
        if n in per_budget:
            row["alone"] = per_budget_row(costs, budgets,
                                          alone_units or row["sweep"]["units"])
        rows.append(row)
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


def _evaluations(values: list[int]) -> str:
    return f"{values[0]}..{values[-1]}"


def print_optimal(rows: list[dict[str, Any]]) -> None:
    print(f"\n(b) optimal DP, heterogeneous stages, store_budget_bytes at {rows[0]['levels']} levels: "
          f"one table (sweep) against one solve per budget in even units of its own")
    print(f"{'n':>5}{'levels':>7}{'sweep s':>9}{'cpu s':>7}{'peak MiB':>10}"
          f"{'evals (low..high)':>19}{'per budget s':>14}{'peak MiB':>10}"
          f"{'evals (low..high)':>19}{'worst':>7}  goal")
    for row in rows:
        sweep, alone = row["sweep"], row.get("alone")
        goal = SWEEP_GOALS_S.get(row["n"])
        met = f"<{goal:g} s: {yes(sweep['total'] < goal)}" if goal else ""
        if alone:
            ratios = [s / a for s, a in zip(sweep["evaluations"], alone["evaluations"])]
            single = (f"{alone['total']:>14.2f}{alone['peak'] / MIB:>10.1f}"
                      f"{_evaluations(alone['evaluations']):>19}{max(ratios):>6.2f}x")
        else:
            single = f"{'-':>14}{'':>36}"
        print(f"{row['n']:>5}{sweep['units']:>7}{sweep['total']:>9.2f}{sweep['cpu']:>7.2f}"
              f"{sweep['peak'] / MIB:>10.1f}{_evaluations(sweep['evaluations']):>19}{single}  "
              f"{met}")
        if alone:
            print(f"{'':>5} sweep against per budget: more evaluations at "
                  f"{sum(r > 1 for r in ratios)} budgets (up to {max(ratios):.2f}x), equal at "
                  f"{sum(r == 1 for r in ratios)}, fewer at {sum(r < 1 for r in ratios)} "
                  f"(down to {min(ratios):.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revolve-n", type=int, nargs="*", default=[10 ** 4, 10 ** 5, 10 ** 6])
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--optimal-n", type=int, nargs="*", default=[100, 200, 500, 1000])
    parser.add_argument("--per-budget-n", type=int, nargs="*", default=[100, 200, 500],
                        help="sizes also solved once per budget, for comparison")
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--alone-units", type=int, default=None,
                        help="even units of each budget solved alone (default: as many as the "
                             "table's levels)")
    parser.add_argument("--repeats", type=int, default=3, help="timed revolve builds per n")
    args = parser.parse_args()
    started = time.perf_counter()
    if args.revolve_n:
        print_revolve(revolve_rows(args.revolve_n, args.slots, args.repeats), args.slots)
    if args.optimal_n:
        print_optimal(optimal_rows(args.optimal_n, args.levels, args.per_budget_n,
                                   args.alone_units))
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
