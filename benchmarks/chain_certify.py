"""The chain DP's certified gap: ``optimal``'s cost against a lower bound on every schedule.

For random heterogeneous chains (those of chain_gap.py: costs 1..9, states and tapes 1..16
units of 64 bytes) at store budgets from x_0 plus the largest tape to half of what keeps
everything, this prints the cost of ``optimal``'s plan (default geometric levels), the exact
recursion's (levels every 64 bytes: the least cost among persistent schedules), and what
:func:`certify_chain` finds within the time limit: its best plan's cost and its lower bound,
valid for *every* schedule of the tape model (docs/chains.md, "Certifying ``optimal``"). The
DP's certified gap is cost / bound - 1; "proven" counts the budgets where the solver proved its
optimum. One worker by default, a fixed seed; the time limit (not a deterministic effort) stops
each solve, so the numbers depend on the machine's load.

    PYTHONPATH=. python benchmarks/chain_certify.py                 # n = 10, 20, 30; ~4 min
    PYTHONPATH=. python benchmarks/chain_certify.py --n 50 --time-limit 60
"""
from __future__ import annotations

import argparse
import statistics
import time

from chain_gap import UNIT, random_chain, store_budgets
from checkpoint_ad.chains.certify import certify_chain
from checkpoint_ad.chains.policies.optimal_table import OptimalTable, clear_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--chains", type=int, default=2, help="random chains per n")
    parser.add_argument("--budgets", type=int, default=4, help="store budgets per chain")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve")
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT workers")
    args = parser.parse_args()
    print(f"{'n':>4} {'chain':>5} {'budget':>7} {'DP':>6} {'exact DP':>8} {'CP-SAT':>7} "
          f"{'bound':>6} {'DP gap':>7} {'status':>8} {'slots':>5} {'s':>5}")
    for n in args.n:
        gaps, proven, better = [], 0, 0
        for seed in range(args.chains):
            costs = random_chain(n, seed)
            exact = OptimalTable.solve(costs, unit_bytes=UNIT)
            for budget in store_budgets(costs, args.budgets, 0.5):
                started = time.perf_counter()
                found = certify_chain(costs, budget, time_limit=args.time_limit,
                                      workers=args.workers)
                gaps.append(found.dp_gap)
                proven += found.status == "optimal"
                better += found.cost < found.dp_cost
                print(f"{n:>4} {seed:>5} {budget:>7} {found.dp_cost:>6g} "
                      f"{exact.cost(budget):>8g} {found.cost:>7g} {found.lower_bound:>6g} "
                      f"{100 * found.dp_gap:>6.2f}% {found.status:>8} {found.horizon:>5} "
                      f"{time.perf_counter() - started:>5.1f}")
            clear_cache()
        print(f"n = {n}: {len(gaps)} budgets, proven {proven}, CP-SAT cheaper than the DP "
              f"{better}, certified DP gap median {100 * statistics.median(gaps):.2f}%, "
              f"worst {100 * max(gaps):.2f}%")


if __name__ == "__main__":
    main()
