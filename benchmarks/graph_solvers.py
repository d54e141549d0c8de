"""Certified graph plans side by side: ``optimal``'s portfolio before CP-SAT, ``cpsat`` (hinted
with that portfolio's plan) and Checkmate's MILP (HiGHS), on traced graph workloads (residual,
U-Net, transformer, DenseNet) of about 50, 200 and 1,000 ops and on random layered DAGs
(Moccasin's benchmark family, ``layered``: ``--layered`` gives their node counts) at
fractions of store_all's peak.

For each case the table shows each solver's plan cost (sum of op costs: unit costs here, so
forward evaluations), the lower bound it proves **for every plan** where it has one, the gap
(cost / bound - 1) and its wall time. The portfolio is ``optimal`` as it was before CP-SAT
joined it (``optimal(cpsat=False)``): the cheapest of its hierarchical plan, ``dtr`` (both
heuristics), ``chen`` (and the MILP on graphs of at most 40 ops), shown with the bound it had
then (every op once). The
closure bound (``checkpoint_ad.graphs.floors``, which includes the retention bound) is shown
on its own; ``cpsat``'s bound includes it. ``cpsat`` is given the
portfolio's plan as its hint and ``--time-limit`` seconds of its own. Checkmate's MILP
(``--time-limit`` seconds, graphs of at most ``--milp-ops`` ops) prints HiGHS's dual bound in
brackets: it bounds Checkmate's restricted formulation only, not every plan. A solver that
fails prints its error, shortened. Not a test: nothing is asserted.

    PYTHONPATH=. python benchmarks/graph_solvers.py                           # 9 cases, ~15 min
    PYTHONPATH=. python benchmarks/graph_solvers.py --ops 50 --fractions 0.5 --time-limit 20
    PYTHONPATH=. python benchmarks/graph_solvers.py --workloads residual unet transformer \
        densenet --ops 50 200 1000 --layered 100 250 500 1000 --fractions 0.3 0.5 0.7 0.9
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import checkpoint_ad as ca
from checkpoint_ad.graphs.floors import closure_bound
from checkpoint_ad.graphs.policies.cpsat import plan_cpsat
from checkpoint_ad.workloads.graph_models import build_graph

OPS_PER_UNIT = {"residual": 4, "unet": 5, "transformer": 38, "densenet": 3}


def graph_costs(workload: str, ops: int) -> ca.GraphCosts:
    """The traced workload with about ``ops`` ops (width 16, batch 8); ``layered``: the random
    layered DAG of ``ops`` nodes (seed 0; it has 1.3 to 1.8 times as many ops)."""
    units = ops if workload == "layered" else max(1, round(ops / OPS_PER_UNIT[workload]))
    built = build_graph(workload, {"n": units, "width": 16, "batch": 8})
    return ca.graph_costs(ca.trace(built.fn, *built.args))


def portfolio(costs: ca.GraphCosts, budget: int, seconds: float) -> ca.GraphPlan:
    """``optimal`` without CP-SAT: its portfolio past exact search."""
    return ca.plan_graph("optimal", costs, budget_bytes=budget, time_limit=seconds, cpsat=False)


def timed(run) -> tuple[ca.GraphPlan | str, float]:
    started = time.perf_counter()
    try:
        return run(), time.perf_counter() - started
    except ca.CheckpointADError as error:
        return str(error)[:60], time.perf_counter() - started


def cell(result: ca.GraphPlan | str, seconds: float, bound: float | None = None,
         every_plan: bool = True) -> str:
    """cost | bound | gap | seconds of one solver's plan (``bound``: instead of the plan's)."""
    if isinstance(result, str):
        return f"{result} | | | {seconds:.1f}"
    bound = result.lower_bound if bound is None else bound
    shown = "" if bound is None else (f"{bound:.4g}" if every_plan else f"[{bound:.4g}]")
    gap = "" if bound is None or not every_plan else f"{result.cost / bound - 1:.1%}"
    own = every_plan and bound == result.lower_bound  # the status goes with the plan's bound
    status = " (optimal)" if result.status == "optimal" and own else ""
    return f"{result.cost:g}{status} | {shown} | {gap} | {seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[50, 200, 1000])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--workloads", nargs="+", default=["unet"],
                        help="traced workloads: residual, unet, transformer, densenet")
    parser.add_argument("--layered", type=int, nargs="*", default=[],
                        help="node counts of random layered DAGs to add (e.g. 100 250 500 1000)")
    parser.add_argument("--time-limit", type=float, default=30.0,
                        help="seconds for cpsat and for the MILP (each)")
    parser.add_argument("--portfolio-limit", type=float, default=10.0,
                        help="seconds for the portfolio (optimal's default)")
    parser.add_argument("--milp-ops", type=int, default=60,
                        help="largest graph (ops) Checkmate's MILP is run on")
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT's workers")
    arguments = parser.parse_args()
    print("| workload | ops | budget | portfolio | every op once | gap | s | closure bound | "
          "cpsat | bound | gap | s | MILP | [its bound] | | s |\n|---|---:|---:|---:|---:|---:|"
          "---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", flush=True)
    graphs = [(workload, ops) for ops in arguments.ops for workload in arguments.workloads]
    for workload, ops in graphs + [("layered", nodes) for nodes in arguments.layered]:
        costs = graph_costs(workload, ops)
        for fraction in arguments.fractions:
            print(row(workload, costs, fraction, arguments), flush=True)


def row(workload: str, costs: ca.GraphCosts, fraction: float, arguments) -> str:
    """One case's table row: the portfolio, the closure bound, cpsat hinted with the
    portfolio's plan, and the MILP where the graph is small enough."""
    budget = int(ca.plan_graph("store_all", costs).peak_bytes * fraction)
    before, before_s = timed(lambda: portfolio(costs, budget, arguments.portfolio_limit))
    hint = before if isinstance(before, ca.GraphPlan) else None
    solved, solved_s = timed(lambda: plan_cpsat(
        costs, budget, time_limit=arguments.time_limit, workers=arguments.workers,
        hint=None if hint is None else replace(hint, policy="hint")))
    milp, milp_s = ("not run", 0.0)
    if len(costs.op_nodes) <= arguments.milp_ops:
        milp, milp_s = timed(lambda: ca.plan_graph("checkmate", costs, budget_bytes=budget,
                                                   time_limit=arguments.time_limit))
    return (f"| {workload} | {len(costs.op_nodes)} | {fraction:.0%} | "
            f"{cell(before, before_s, costs.total_cost)} | "
            f"{closure_bound(costs, budget):.4g} | {cell(solved, solved_s)} | "
            f"{cell(milp, milp_s, every_plan=False)} |")

if __name__ == "__main__":
    main()
