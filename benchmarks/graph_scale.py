"""Graph planners side by side: solve time and plan cost on traced graph workloads.

For each workload (``residual``, ``unet``, ``transformer``) sized to about each ``--ops`` (200 and
1,000 ops by default), and each budget (a fraction of store_all's peak), the planners ``optimal``,
``dtr`` (online, and offline ``next_use``) and ``chen`` plan the graph (and ``checkmate`` with
``--checkmate`` seconds, on graphs of at most ``--checkmate-ops`` ops); the table shows the solve
time, the cost (sum of op costs: unit costs, so forward evaluations), the cost over store_all's
(``overhead``), the gap to the best plan any planner found for that case, and the replayed peak
over the budget. For ``optimal`` the planner column names the plan it kept
(``optimal[hierarchical]``, ``optimal[dtr]``...) and ``hierarchical`` gives the hierarchical plan's
own cost. A planner that fails (budget too small for it, time limit, thrashing) shows its one-line
reason.

Planners are pure functions, so everything runs in this one process. Not a test: nothing is
asserted.

    PYTHONPATH=. python benchmarks/graph_scale.py                      # 200 and 1,000 ops
    PYTHONPATH=. python benchmarks/graph_scale.py --ops 200 --checkmate 10
"""
from __future__ import annotations

import argparse
import time

import checkpoint_ad as ca
from checkpoint_ad.workloads.graph_models import build_graph

OPS_PER_UNIT = {"residual": 4, "unet": 5, "transformer": 38}


def graph_costs(workload: str, ops: int) -> ca.GraphCosts:
    units = max(1, round(ops / OPS_PER_UNIT[workload]))
    built = build_graph(workload, {"n": units, "width": 16, "batch": 8})
    return ca.graph_costs(ca.trace(built.fn, *built.args))


def planners(ops: int, checkmate_seconds: float, checkmate_ops: int) -> dict[str, dict]:
    """The planners to run on a graph of ``ops`` ops (label: "policy" or "policy:heuristic"),
    with their options."""
    chosen: dict[str, dict] = {"optimal": {}, "dtr": {}, "dtr:next_use": {"heuristic": "next_use"},
                               "chen": {}}
    if checkmate_seconds > 0 and ops <= checkmate_ops:
        chosen["checkmate"] = {"time_limit": checkmate_seconds}
    return chosen


def run(name: str, costs: ca.GraphCosts, budget: int, options: dict
        ) -> tuple[str, float, ca.GraphPlan | str]:
    started = time.perf_counter()
    try:
        plan = ca.plan_graph(name.split(":")[0], costs, budget_bytes=budget, **options)
    except ca.CheckpointADError as error:
        return name, time.perf_counter() - started, str(error)[:70]
    label = f"{name}[{plan.method}]" if name == "optimal" else name
    return label, time.perf_counter() - started, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--workloads", nargs="+", default=list(OPS_PER_UNIT))
    parser.add_argument("--checkmate", type=float, default=0.0,
                        help="seconds for checkmate's MILP (0: checkmate is not run)")
    parser.add_argument("--checkmate-ops", type=int, default=300,
                        help="largest graph (ops) checkmate is run on")
    arguments = parser.parse_args()
    print("| workload | ops | budget | planner | solve s | cost | overhead | gap to best | "
          "peak / budget | hierarchical |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for ops in arguments.ops:
        for workload in arguments.workloads:
            costs = graph_costs(workload, ops)
            store_all = ca.plan_graph("store_all", costs)
            chosen = planners(len(costs.op_nodes), arguments.checkmate, arguments.checkmate_ops)
            for fraction in arguments.fractions:
                budget = int(store_all.peak_bytes * fraction)
                rows = [run(name, costs, budget, options) for name, options in chosen.items()]
                found = [plan.cost for _, _, plan in rows if isinstance(plan, ca.GraphPlan)]
                best = min(found) if found else None
                for label, seconds, plan in rows:
                    head = (f"| {workload} | {len(costs.op_nodes)} | {fraction:.0%} | {label} | "
                            f"{seconds:.2f} |")
                    if isinstance(plan, ca.GraphPlan):
                        own = plan.details.get("tried", {}).get("hierarchical", "")
                        print(f"{head} {plan.cost:g} | {plan.cost / store_all.cost:.2f}x | "
                              f"{plan.cost / best - 1:+.1%} | {plan.peak_bytes / budget:.2f} | "
                              f"{own if own == '' else format(own, 'g')} |", flush=True)
                    else:
                        print(f"{head} {plan} | | | | |", flush=True)


if __name__ == "__main__":
    main()
