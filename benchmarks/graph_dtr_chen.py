"""The graph planners ``dtr`` and ``chen`` on traced graphs of growing size: solve time and
the plan's cost and peak at budgets that are fractions of store_all's peak.

Workloads (traced with checkpoint_ad ops, width 32, batch 8, float64; unit op costs):
``residual`` blocks ``h = h + tanh(h @ W)``, ``tanh_mlp`` layers ``h = tanh(h @ W)``, and
``unet`` (an encoder of ``sin`` whose values the decoder multiplies back in, in reverse, so
that only the last op splits the graph). For each graph and budget fraction the table gives
each planner's evaluations (op computations, forward pass included), peak bytes and solve
time (median of ``--repeats`` runs); ``-`` means the planner refused the budget (DTR's run
could not proceed, or no segmentation of Chen's fits). ``optimal`` (exact search) is shown
where the graph is small enough.

    PYTHONPATH=. python benchmarks/graph_dtr_chen.py              # about a minute
    PYTHONPATH=. python benchmarks/graph_dtr_chen.py --sizes 8 32 --repeats 1

Not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import checkpoint_ad as ca
from checkpoint_ad.errors import BudgetError
from checkpoint_ad.graphs.costs import GraphCosts
from checkpoint_ad.graphs.policies import plan_graph

WIDTH, BATCH = 32, 8
OPTIMAL_MAX_OPS = 14
PLANNERS = (("dtr", {}), ("dtr", {"heuristic": "local"}), ("dtr", {"heuristic": "lru"}),
            ("dtr", {"heuristic": "size"}), ("chen", {}))


def residual(depth: int) -> Callable:
    def fn(h, weights):
        for w in weights:
            h = ca.add(h, ca.tanh(ca.matmul(h, w)))
        return ca.sum(h)
    return fn


def tanh_mlp(depth: int) -> Callable:
    def fn(h, weights):
        for w in weights:
            h = ca.tanh(ca.matmul(h, w))
        return ca.sum(h)
    return fn


def unet(depth: int) -> Callable:
    def fn(h, weights):
        encoder = [h]
        for _ in weights:
            encoder.append(ca.sin(encoder[-1]))
        h = encoder[-1]
        for skip in reversed(encoder[1:]):
            h = ca.multiply(ca.sin(h), skip)
        return ca.sum(h)
    return fn


WORKLOADS = {"residual": residual, "tanh_mlp": tanh_mlp, "unet": unet}


def traced(workload: str, depth: int) -> GraphCosts:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, WIDTH))
    weights = [rng.standard_normal((WIDTH, WIDTH)) / WIDTH for _ in range(depth)]
    return ca.graph_costs(ca.trace(WORKLOADS[workload](depth), x, weights))


def timed(policy: str, costs: GraphCosts, repeats: int, **params: object):
    """(plan or None if refused, median seconds)."""
    times, plan = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            plan = plan_graph(policy, costs, **params)
        except BudgetError:
            plan = None
        times.append(time.perf_counter() - started)
    return plan, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 32, 128])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.25])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    header = f"{'graph':<14} {'ops':>4} {'budget':>8}  {'planner':<12} {'evals':>6} " \
             f"{'peak':>8} {'solve ms':>9}"
    print(header)
    print("-" * len(header))
    for workload in WORKLOADS:
        for depth in args.sizes:
            costs = traced(workload, depth)
            ops = len(costs.op_nodes)
            store_all = plan_graph("store_all", costs)
            for fraction in args.fractions:
                budget = int(store_all.peak_bytes * fraction)
                rows = list(PLANNERS)
                if ops <= OPTIMAL_MAX_OPS:
                    rows.append(("optimal", {}))
                for policy, params in rows:
                    plan, seconds = timed(policy, costs, args.repeats, budget_bytes=budget,
                                          **params)
                    name = f"dtr:{params.get('heuristic', 'dtr')}" if policy == "dtr" else policy
                    evals = "-" if plan is None else str(plan.forward_evals)
                    peak = "-" if plan is None else str(plan.peak_bytes)
                    print(f"{workload + f'({depth})':<14} {ops:>4} {budget:>8}  {name:<12} "
                          f"{evals:>6} {peak:>8} {seconds * 1e3:>9.1f}")


if __name__ == "__main__":
    main()
