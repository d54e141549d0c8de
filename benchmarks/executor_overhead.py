"""Executor + engine overhead per plan action, on a chain whose stages do almost nothing.

The chain: n stages x_t = sin(x_{t-1}) on a 1-element state, so numpy's work is negligible and
what is left is the cost of running a plan. For each policy the plan is made once (outside the
timing), then the executor runs it with arrays (``Executor`` over an ``ArrayRunner`` and a
``Meter``, as ``backprop`` does, without its profiling sweep, planning or tracemalloc):
median of ``--repeats`` runs after a warm-up.

An *action* is one stage evaluation (each stage of an ``advance a..b`` run counts, and each
tape or turn), one backward step (a turn's included), or one save, restore or free. The floor
beside it makes the same number of bare Python function calls doing the same numpy work:
``forward(x) = np.sin(x)`` per evaluation, ``backward(g, x) = g * np.cos(x)`` per backward
step, a dict store, lookup or delete per save, restore or free. The ratio of the two isolates
what the executor and the engine add per action. Not a test: it asserts nothing.

    PYTHONPATH=. python benchmarks/executor_overhead.py [--n 1000] [--repeats 5]
    PYTHONPATH=. python benchmarks/executor_overhead.py --profile sqrt_n   # where it goes
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import checkpoint_ad as ca
from checkpoint_ad.engine.autodiff import value_and_grad
from checkpoint_ad.chains.chain import profile_chain
from checkpoint_ad.chains.executor import ArrayRunner, Executor
from checkpoint_ad.plans.memory import Meter
from checkpoint_ad.chains.plans import Action, Plan
from checkpoint_ad.chains.policies import make_plan

SEED = 0
BOOKKEEPING = (Action.SAVE, Action.RESTORE, Action.FREE)


def sine_stage(x: Any, params: Any) -> Any:
    return ca.sin(x)


def action_counts(plan: Plan) -> dict[str, int]:
    """Stage evaluations, backward steps and save/restore/free steps of ``plan``."""
    counts = {"evaluations": 0, "backward": 0, "bookkeeping": 0}
    for step in plan:
        counts["evaluations"] += step.evaluations
        counts["backward"] += step.action in (Action.TURN, Action.BACKWARD)
        counts["bookkeeping"] += step.action in BOOKKEEPING
    return counts


def engine_run(chain: ca.Chain, plan: Plan, profile: Any, x0: Any) -> Callable[[], Any]:
    """One executor run of ``plan``, set up as backprop sets it up (the setup is not timed)."""
    objective = value_and_grad(ca.sum)

    def seed_cotangent(x_n: Any) -> Any:
        return objective(x_n)[1]

    def prepare() -> Callable[[], Any]:
        executor = Executor(plan, ArrayRunner(chain, SEED, profile), Meter())

        def run() -> Any:
            executor.forward(x0)
            return executor.reverse(seed_cotangent)
        return run
    return prepare


def forward(x: Any) -> Any:
    return np.sin(x)


def backward(g: Any, x: Any) -> Any:
    return g * np.cos(x)


def bare_run(counts: dict[str, int], x0: Any) -> Callable[[], Callable[[], Any]]:
    """The same count of bare calls doing the same numpy work, with no executor around them."""
    def prepare() -> Callable[[], Any]:
        def run() -> Any:
            stored: dict[int, Any] = {}
            x = x0
            for _ in range(counts["evaluations"]):
                x = forward(x)
            g = np.ones_like(x0)
            for _ in range(counts["backward"]):
                g = backward(g, x0)
            for index in range(counts["bookkeeping"]):  # store, look up, delete in turn
                if index % 3 == 0:
                    stored[index] = x
                elif index % 3 == 1:
                    x = stored[index - 1]
                else:
                    del stored[index - 2]
            return g
        return run
    return prepare


def median_seconds(prepare: Callable[[], Callable[[], Any]], repeats: int) -> float:
    """Median seconds of ``repeats`` runs, each prepared untimed; one warm-up first."""
    prepare()()
    times = []
    for _ in range(repeats):
        run = prepare()
        gc.collect()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


POLICIES = (("store_all", {}), ("recompute_all", {}), ("sqrt_n", {}),
            ("revolve", {"slots": 10}), ("optimal", {"slots": 10}))


def setup(policy: str, params: dict[str, Any], n: int) -> tuple[ca.Chain, Plan, Any, Any]:
    chain = ca.Chain.repeat(sine_stage, n)
    x0 = np.array([0.5])
    profile = profile_chain(chain, x0, SEED)
    return chain, make_plan(policy, profile.costs("unit"), **params), profile, x0


def measure(n: int, small_n: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for policy, params in POLICIES:
        size = small_n if policy == "recompute_all" else n
        chain, plan, profile, x0 = setup(policy, params, size)
        counts = action_counts(plan)
        actions = sum(counts.values())
        engine = median_seconds(engine_run(chain, plan, profile, x0), repeats)
        bare = median_seconds(bare_run(counts, x0), repeats)
        label = policy + "".join(f" {k}={v}" for k, v in params.items())
        rows.append({"policy": label, "n": size, "steps": len(plan), "actions": actions,
                     "engine": engine, "bare": bare, **counts})
    return rows


def print_profile(policy: str, n: int, top: int = 15) -> None:
    """cProfile one executor run of ``policy``: the functions with the most own time."""
    params = dict(POLICIES)[policy]
    chain, plan, profile, x0 = setup(policy, params, n)
    run = engine_run(chain, plan, profile, x0)()
    profiler = cProfile.Profile()
    profiler.runcall(run)
    print(f"cProfile of one executor run: {policy} n={n}, {sum(action_counts(plan).values())} "
          f"actions")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--recompute-n", type=int, default=200,
                        help="n for recompute_all (n(n+1)/2 evaluations)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", choices=[p for p, _ in POLICIES],
                        help="instead of the table, cProfile one run of this policy")
    args = parser.parse_args()
    if args.profile:
        print_profile(args.profile, args.recompute_n if args.profile == "recompute_all" else args.n)
        return 0
    rows = measure(args.n, args.recompute_n, args.repeats)
    print("executor + engine overhead per action (1-element sin chain; action = one stage "
          "evaluation, backward step, save, restore or free)")
    print(f"{'policy':<19}{'n':>5}{'steps':>7}{'evals':>7}{'bwd':>6}{'s/r/f':>6}{'engine s':>10}"
          f"{'bare s':>9}{'us/act':>8}{'bare us':>8}{'ratio':>7}")
    for r in rows:
        per, bare = 1e6 * r["engine"] / r["actions"], 1e6 * r["bare"] / r["actions"]
        print(f"{r['policy']:<19}{r['n']:>5}{r['steps']:>7}{r['evaluations']:>7}{r['backward']:>6}"
              f"{r['bookkeeping']:>6}{r['engine']:>10.4f}{r['bare']:>9.4f}{per:>8.2f}{bare:>8.2f}"
              f"{r['engine'] / r['bare']:>7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
