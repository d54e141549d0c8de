"""Graph planners side by side: solve time and cost of ``checkmate`` (MILP, HiGHS) and
``checkmate_lp`` (LP relaxation, deterministic rounding) against ``optimal`` (exact search)
on small traced graph workloads, at three budgets each: the least peak of any plan, the
midpoint, and store_all's peak.

Columns: the cost of each plan (unit op costs: forward evaluations), the bound each reports
(``optimal``'s is its cost; checkmate's is HiGHS's dual bound and checkmate_lp's the LP value,
both bounds of Checkmate's formulation only), and the wall time of each planner call. A
planner that fails prints "fails [k]", and note k under the table gives its error. Not a test: nothing is asserted.

    PYTHONPATH=. python benchmarks/graph_planners.py                 # about a minute
    PYTHONPATH=. python benchmarks/graph_planners.py --time-limit 30 --graphs residual:3 unet:3
"""
from __future__ import annotations

import argparse
import time

import checkpoint_ad as ca
from checkpoint_ad.graphs.policies.optimal import minimum_budget
from checkpoint_ad.workloads.graph_models import build_graph

DEFAULT_GRAPHS = ("relu_layer", "residual:2", "residual:3", "unet:2", "unet:3", "densenet:3")


def costs_of(entry: str) -> ca.GraphCosts:
    name, _, n = entry.partition(":")
    sizes = {"width": 8, "batch": 4, **({"n": int(n)} if n else {})}
    workload = build_graph(name, sizes)
    return ca.graph_costs(ca.trace(workload.fn, *workload.args))


NOTES: list[str] = []


def timed(policy: str, costs: ca.GraphCosts, **params) -> tuple[str, str, float]:
    started = time.perf_counter()
    try:
        plan = ca.plan_graph(policy, costs, **params)
    except ca.CheckpointADError as error:
        NOTES.append(f"[{len(NOTES) + 1}] {error}")
        return f"fails [{len(NOTES)}]", "", time.perf_counter() - started
    bound = "" if plan.lower_bound is None else f"{plan.lower_bound:.4g}"
    status = "" if plan.status in ("optimal", "feasible") else f" ({plan.status})"
    return f"{plan.cost:g}{status}", bound, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", nargs="+", default=DEFAULT_GRAPHS,
                        help="workload[:n] entries (graph workloads of checkpoint_ad.lab)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="HiGHS seconds")
    args = parser.parse_args()
    header = (f"{'graph':<12}{'ops':>4}{'budget':>8} | {'optimal':>8}{'s':>7} | "
              f"{'checkmate':>10}{'bound':>7}{'s':>7} | {'checkmate_lp':>12}{'LP':>7}{'s':>7}")
    rows = [header, "-" * len(header)]
    for entry in args.graphs:
        costs = costs_of(entry)
        least = minimum_budget(costs)
        most = ca.plan_graph("store_all", costs).peak_bytes
        for budget in sorted({least, (least + most) // 2, most}):
            best, _, best_s = timed("optimal", costs, budget_bytes=budget)
            milp, milp_bound, milp_s = timed("checkmate", costs, budget_bytes=budget,
                                             time_limit=args.time_limit)
            lp, lp_bound, lp_s = timed("checkmate_lp", costs, budget_bytes=budget,
                                       time_limit=args.time_limit)
            rows.append(f"{entry:<12}{len(costs.op_nodes):>4}{budget:>8} | {best:>8}"
                        f"{best_s:>7.2f} | {milp:>10}{milp_bound:>7}{milp_s:>7.2f} | "
                        f"{lp:>12}{lp_bound:>7}{lp_s:>7.2f}")
            print(rows[-1], flush=True)
    print("\n" + "\n".join(rows + NOTES))


if __name__ == "__main__":
    main()
