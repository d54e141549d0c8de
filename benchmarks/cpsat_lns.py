"""``cpsat``'s plans before and after its large-neighbourhood search (LNS,
``checkpoint_ad.graphs.policies.cpsat_lns``), side by side: the same hint, one worker, the
same deterministic ``effort`` (CP-SAT's deterministic time), so the search does not depend on
the machine's load; the wall time is printed too.

"before" is ``cpsat`` with its rounds that are not exact solved on the whole model, as before
the LNS (``cpsat.LNS_OPS`` set past every graph); "after" is ``cpsat`` as it is. Each side
prints the plan's cost, its lower bound (valid for every plan: the LNS does not change it),
the gap (cost / bound - 1), whether it is proven optimal and its wall time. The hint is the one ``cpsat`` picks itself
(the cheapest of its heuristic planners), computed once per case and given to both. The cases
are the traced workloads of benchmarks/graph_solvers.py at about ``--ops`` ops, at
fractions of store_all's peak. Not a test: nothing is asserted.

    PYTHONPATH=. python benchmarks/cpsat_lns.py                       # ~200 and ~50 ops
    PYTHONPATH=. python benchmarks/cpsat_lns.py --ops 50 --workloads unet --fractions 0.5
"""
from __future__ import annotations

import argparse
import math

import checkpoint_ad as ca
import cpsat_bounds
from checkpoint_ad.graphs.policies import cpsat
from graph_solvers import graph_costs


def solve(costs: ca.GraphCosts, budget: int, hint: ca.GraphPlan, arguments, after: bool) -> str:
    """cost | bound | gap | proven | window s | s of cpsat with (``after``) or without the LNS."""
    kept = cpsat.LNS_OPS
    if not after:
        cpsat.LNS_OPS = math.inf
    try:
        return cpsat_bounds.solve(costs, budget, hint, arguments, "after")
    finally:
        cpsat.LNS_OPS = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, nargs="+", default=[200, 50])
    parser.add_argument("--workloads", nargs="+", default=cpsat_bounds.WORKLOADS,
                        help="at 50 ops only unet and transformer unless named")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--effort", type=float, default=5.0,
                        help="CP-SAT's deterministic time per call (about seconds of work)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="wall seconds per call (the issue's goal)")
    arguments = parser.parse_args()
    print(cpsat_bounds.HEADER, flush=True)
    for ops in arguments.ops:
        for workload in arguments.workloads:
            if ops < 100 and workload in ("residual", "densenet") and \
                    arguments.workloads == cpsat_bounds.WORKLOADS:
                continue
            costs = graph_costs(workload, ops)
            peak = ca.plan_graph("store_all", costs).peak_bytes
            for fraction in arguments.fractions:
                cpsat_bounds.case(costs, workload, int(peak * fraction), fraction, arguments,
                                  solve)


if __name__ == "__main__":
    main()
