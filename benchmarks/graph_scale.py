"""Graph planners side by side: solve time and plan cost on traced graph workloads.

For each workload (``residual``, ``unet``, ``transformer``) sized to about ``--ops`` ops, and
each budget (a fraction of store_all's peak), every graph policy that takes ``budget_bytes``
plans the graph; the table shows its solve time, its cost (sum of op costs: unit costs, so
forward evaluations), its cost over store_all's (``overhead``), the gap to the best plan any
planner found for that case, and its replayed peak over the budget. A planner that fails
(budget too small for it, time limit, thrashing) shows its one-line reason.

Planners are pure functions, so everything runs in this one process. Not a test: nothing is
asserted.

    PYTHONPATH=. python benchmarks/graph_scale.py                          # ~200 ops
    PYTHONPATH=. python benchmarks/graph_scale.py --ops 1000 --time-limit 60
"""
from __future__ import annotations

import argparse
import time

import checkpoint_ad as ca
from checkpoint_ad.graphs.policies import REGISTRY
from checkpoint_ad.lab.graph_models import build_graph

OPS_PER_UNIT = {"residual": 4, "unet": 5, "transformer": 38}


def graph_costs(workload: str, ops: int) -> ca.GraphCosts:
    units = max(1, round(ops / OPS_PER_UNIT[workload]))
    built = build_graph(workload, {"n": units, "width": 16, "batch": 8})
    return ca.GraphCosts.from_graph(ca.trace(built.fn, *built.args))


def budget_planners(time_limit: float) -> dict[str, dict]:
    """Every registered graph policy that takes a byte budget, with its options."""
    found = {}
    for name in REGISTRY.names():
        parameters = {p.name for p in REGISTRY.get(name).parameters}
        if "budget_bytes" in parameters:
            found[name] = {"time_limit": time_limit} if "time_limit" in parameters else {}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--workloads", nargs="+", default=list(OPS_PER_UNIT))
    parser.add_argument("--time-limit", type=float, default=10.0,
                        help="seconds for planners that take a time limit")
    arguments = parser.parse_args()
    planners = budget_planners(arguments.time_limit)
    print("| workload | ops | budget | planner | solve s | cost | overhead | gap to best | "
          "peak / budget |\n|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for workload in arguments.workloads:
        costs = graph_costs(workload, arguments.ops)
        store_all = ca.plan_graph("store_all", costs)
        for fraction in arguments.fractions:
            budget = int(store_all.peak_bytes * fraction)
            rows = []
            for name, options in planners.items():
                started = time.perf_counter()
                try:
                    plan = ca.plan_graph(name, costs, budget_bytes=budget, **options)
                    rows.append((name, time.perf_counter() - started, plan))
                except ca.CheckpointADError as error:
                    rows.append((name, time.perf_counter() - started, str(error)[:70]))
            costs_found = [plan.cost for _, _, plan in rows if isinstance(plan, ca.GraphPlan)]
            best = min(costs_found) if costs_found else None
            for name, seconds, plan in rows:
                head = (f"| {workload} | {len(costs.op_nodes)} | {fraction:.0%} | {name} | "
                        f"{seconds:.2f} |")
                if isinstance(plan, ca.GraphPlan):
                    print(f"{head} {plan.cost:g} | {plan.cost / store_all.cost:.2f}x | "
                          f"{plan.cost / best - 1:+.1%} | {plan.peak_bytes / budget:.2f} |")
                else:
                    print(f"{head} {plan} | | | |")


if __name__ == "__main__":
    main()
