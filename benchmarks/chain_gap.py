"""How far the chain DP's plans are from the exact optimum of its model, heterogeneous chains.

The ``optimal`` DP (docs/cost_model.md) is exact for its store budget only up to its memory
levels: with the default geometric grid, every move rounds the bytes left down to a level. On
chains whose sizes are whole multiples of ``UNIT`` bytes, a table of levels every ``UNIT`` bytes
rounds nothing, so it gives the exact optimum of the recursion (the least cost among persistent
schedules, each checkpoint kept until it is dead). This prints, for random heterogeneous chains
(costs 1..9, states and tapes 1..16 units), at store budgets from x_0 plus the largest tape to
everything, the default grid's cost over that exact optimum (its gap, measured), and over the
default grid's own lower bound (``OptimalTable.lower_bound``: every move rounded up, a
relaxation; the gap it *certifies*, on any chain). ``--no-exact`` skips the exact tables (for
long chains, where levels every 64 bytes are many).

    PYTHONPATH=. python benchmarks/chain_gap.py                  # n = 20, 50, 100; ~15 s
    PYTHONPATH=. python benchmarks/chain_gap.py --n 200 500 --no-exact --chains 2
"""
from __future__ import annotations

import argparse
import math
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


def store_budgets(costs: ChainCosts, count: int, share: float = 1.0) -> list[int]:
    """``count`` store budgets spaced geometrically from x_0 plus the largest tape to x_0 plus
    ``share`` of the bytes that keep everything, on whole units of free bytes."""
    low = costs.state_bytes[0] + max(costs.tape_bytes)
    high = costs.state_bytes[0] + share * everything_bytes(costs, True)
    found = []
    for k in range(count):
        budget = int(low * (high / low) ** (k / max(count - 1, 1)))
        found.append(budget - (budget - costs.state_bytes[0]) % UNIT)
    return found


def gaps(costs: ChainCosts, budgets: int, exact: bool) -> list[tuple[float, float]]:
    """(gap to the exact optimum or nan, gap to the lower bound) at ``budgets`` store budgets
    on whole units of free bytes."""
    default = OptimalTable.solve(costs)
    table = OptimalTable.solve(costs, unit_bytes=UNIT) if exact else None
    found = []
    for budget in store_budgets(costs, budgets):
        cost = default.cost(budget)
        found.append((cost / table.cost(budget) - 1 if table else math.nan,
                      cost / default.lower_bound(budget) - 1))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20, 50, 100])
    parser.add_argument("--chains", type=int, default=5, help="random chains per n")
    parser.add_argument("--budgets", type=int, default=12, help="store budgets per chain")
    parser.add_argument("--no-exact", action="store_true", help="skip the exact tables")
    args = parser.parse_args()
    print(f"{'n':>5} {'budgets':>7} {'exact at':>8} {'mean gap':>9} {'worst gap':>9} "
          f"{'worst certified':>15} {'seconds':>8}")
    for n in args.n:
        started = time.perf_counter()
        found = []
        for seed in range(args.chains):
            found += gaps(random_chain(n, seed), args.budgets, not args.no_exact)
            clear_cache()
        measured = [gap for gap, _ in found]
        print(f"{n:>5} {len(found):>7} {sum(g <= 1e-12 for g in measured):>8} "
              f"{100 * statistics.fmean(measured):>8.2f}% {100 * max(measured):>8.2f}% "
              f"{100 * max(bound for _, bound in found):>14.2f}% "
              f"{time.perf_counter() - started:>8.1f}")


if __name__ == "__main__":
    main()
