"""Issue 25's goal check for graphs (docs/offload_model.md): ``optimal`` with a bandwidth against
exact search where it reaches, and against the recompute-only optimum on ~200-op graphs.

1. Small graphs (the four families of the ground-truth table, 7 ops): at every budget and at
   bandwidths 0.5, 1 and 2, exact search's least time against the plan ``optimal`` returns past
   exact search (``max_states=1`` forces its portfolio: ``dtr`` with transfers, the hierarchical
   plan, chen, the MILP), printed as the largest and mean gap in time.
2. ~200-op traced graphs (residual, U-Net, transformer; width 16, batch 8: most values 1 KiB):
   at each budget (a fraction of store_all's peak), the time over store_all's of the
   recompute-only ``optimal`` and of ``optimal`` at bandwidths where the median value moves in
   8 op times (low), 1.46 op times (PCIe-like: experiments/offload.toml derives it) and
   ~0 (effectively infinite); ``removed`` is the share of the recompute-only time overhead
   that offload removes, (T0 - T) / (T0 - T_store_all).

Planners are pure functions, so everything runs in this one process. Not a test: nothing is
asserted.

    PYTHONPATH=. python benchmarks/offload_goal.py
    PYTHONPATH=. python benchmarks/offload_goal.py --time-limit 10 --ops 200
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import checkpoint_ad as ca
from checkpoint_ad.workloads.graph_models import build_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from graph_families import fig69_chain, resnet, tanh_mlp, unet  # noqa: E402

OPS_PER_UNIT = {"residual": 4, "unet": 5, "transformer": 38}
RATIOS = {"low": 8.0, "PCIe-like": 1.46, "infinite": 1e-9}  # op times to move the median value


def small_graphs() -> None:
    """Part 1: the portfolio against exact search on the ground-truth families."""
    gaps = []
    for name, costs in {"fig69_chain(6)": fig69_chain(6), "tanh_mlp(3)": tanh_mlp(3),
                        "resnet(2)": resnet(2), "unet(2)": unet(2)}.items():
        least = ca.plan_graph("optimal", costs).peak_bytes  # unbounded: store_all's peak
        floor = ca.plan_graph("optimal", costs, budget_bytes=least).peak_bytes
        for budget in range(2, floor + 1):
            for bandwidth in (0.5, 1, 2):
                try:
                    exact = ca.plan_graph("optimal", costs, budget_bytes=budget,
                                          bandwidth=bandwidth)
                except ca.CheckpointADError:
                    continue
                past = ca.plan_graph("optimal", costs, budget_bytes=budget,
                                     bandwidth=bandwidth, max_states=1)
                gaps.append((past.time / exact.time - 1, name, budget, bandwidth))
    worst = max(gaps)
    print(f"small graphs: {len(gaps)} (graph, budget, bandwidth) cases; past exact search the "
          f"portfolio's time is {100 * statistics.mean(g[0] for g in gaps):.1f}% above exact "
          f"search's on average, {100 * worst[0]:.1f}% at worst ({worst[1]}, budget "
          f"{worst[2]}, bandwidth {worst[3]}); equal in "
          f"{sum(g[0] == 0 for g in gaps)} cases\n")


def graph_costs(workload: str, ops: int) -> ca.GraphCosts:
    units = max(1, round(ops / OPS_PER_UNIT[workload]))
    built = build_graph(workload, {"n": units, "width": 16, "batch": 8})
    return ca.graph_costs(ca.trace(built.fn, *built.args))


def timed(costs: ca.GraphCosts, budget: int, limit: float, bandwidth: float | None
          ) -> tuple[float | None, float, str]:
    """(time, solve seconds, method) of optimal, or (None, seconds, reason)."""
    started = time.perf_counter()
    try:
        plan = ca.plan_graph("optimal", costs, budget_bytes=budget, time_limit=limit,
                             bandwidth=bandwidth)
    except ca.CheckpointADError as error:
        return None, time.perf_counter() - started, str(error)[:50]
    return plan.time, time.perf_counter() - started, plan.method


def large_graphs(ops: int, fractions: list[float], limit: float) -> None:
    """Part 2: offload against recompute only on ~``ops``-op graphs."""
    print("| workload | ops | budget | bandwidth (B/op time) | time / store_all | removed | "
          "solve s | method |\n|---|---:|---:|---|---:|---:|---:|---|")
    for workload in OPS_PER_UNIT:
        costs = graph_costs(workload, ops)
        store_all = ca.plan_graph("store_all", costs)
        median = statistics.median(costs.sizes[i] for i in costs.op_nodes)
        for fraction in fractions:
            budget = int(store_all.peak_bytes * fraction)
            alone, seconds, method = timed(costs, budget, limit, None)
            print(f"| {workload} | {len(costs.op_nodes)} | {fraction:.2f} | 0 (recompute "
                  f"only) | {_ratio(alone, store_all.time)} | - | {seconds:.2f} | {method} |")
            for label, op_times in RATIOS.items():
                bandwidth = median / op_times
                found, seconds, method = timed(costs, budget, limit, bandwidth)
                removed = ("-" if found is None or alone is None or alone == store_all.time
                           else f"{100 * (alone - found) / (alone - store_all.time):.0f}%")
                print(f"| {workload} | {len(costs.op_nodes)} | {fraction:.2f} | {label} "
                      f"{bandwidth:.4g} | {_ratio(found, store_all.time)} | {removed} | "
                      f"{seconds:.2f} | {method} |")


def _ratio(value: float | None, store_all_time: float | None) -> str:
    return "no plan" if value is None else f"{value / store_all_time:.3f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--time-limit", type=float, default=5.0)
    arguments = parser.parse_args()
    small_graphs()
    large_graphs(arguments.ops, arguments.fractions, arguments.time_limit)


if __name__ == "__main__":
    main()
