"""How far the chain DP's plans are from the exact optimum of its model, heterogeneous chains.

The ``optimal`` DP (docs/cost_model.md) is exact for its store budget only up to its memory
levels: with the default geometric grid, every move rounds the bytes left down to a level. On
chains whose sizes are whole multiples of ``UNIT`` bytes, a table of levels every ``UNIT`` bytes
rounds nothing, so it gives the exact optimum of the recursion (the least cost among persistent
schedules, each checkpoint kept until it is dead). This prints, for random heterogeneous chains
(costs 1..9, states and tapes 1..16 units), at store budgets from x_0 plus the largest tape to
everything, the default grid's cost over that exact optimum: its gap, measured, not bounded.

    PYTHONPATH=. python benchmarks/chain_gap.py                  # n = 20, 50, 100; ~1 minute
    PYTHONPATH=. python benchmarks/chain_gap.py --n 30 --chains 3 --budgets 8
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.policies.optimal_dp import everything_bytes
from checkpoint_ad.chains.policies.optimal_table import OptimalTable, clear_cache

UNIT = 64  # bytes: every size is a whole number of units, so unit levels round nothing


def random_chain(n: int, seed: int) -> ChainCosts:
    rng = random.Random(seed)
    states = tuple(UNIT * rng.randint(1, 16) for _ in range(n + 1))
    tapes = tuple(states[t + 1] + UNIT * rng.randint(0, 8) for t in range(n))
    return ChainCosts(n, tuple(float(rng.randint(1, 9)) for _ in range(n)), states, tapes)


def gaps(costs: ChainCosts, budgets: int) -> list[float]:
    """The default grid's cost over the exact one at ``budgets`` store budgets."""
    default = OptimalTable.solve(costs)
    exact = OptimalTable.solve(costs, unit_bytes=UNIT)
    low = costs.state_bytes[0] + max(costs.tape_bytes)
    high = costs.state_bytes[0] + everything_bytes(costs, True)
    found = []
    for k in range(budgets):
        budget = int(low * (high / low) ** (k / max(budgets - 1, 1)))
        found.append(default.cost(budget) / exact.cost(budget) - 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--chains", type=int, default=5, help="random chains per n")
    parser.add_argument("--budgets", type=int, default=12, help="store budgets per chain")
    args = parser.parse_args()
    print(f"{'n':>5} {'chains':>6} {'budgets':>7} {'exact':>6} {'mean gap':>9} "
          f"{'worst gap':>9} {'seconds':>8}")
    for n in args.n:
        started = time.perf_counter()
        found = []
        for seed in range(args.chains):
            found += gaps(random_chain(n, seed), args.budgets)
            clear_cache()
        exact = sum(gap <= 1e-12 for gap in found)
        print(f"{n:>5} {args.chains:>6} {len(found):>7} {exact:>6} "
              f"{100 * statistics.fmean(found):>8.2f}% {100 * max(found):>8.2f}% "
              f"{time.perf_counter() - started:>8.1f}")


if __name__ == "__main__":
    main()
