"""What a graph planner may take before it starts: an upper estimate of its memory from the
number of ops alone, checked against the planner limits of :mod:`checkpoint_ad.plans.limits`
(half of this machine's memory by default; ``limited(memory_bytes=...)`` to change them).

Estimates in bytes, for a graph of V ops and E edges:

* every plan: ``VIEW_BYTES`` per op and per edge (the graph's consumers, op parents and
  backward order, built on first use) and ``STEP_BYTES`` per step, at most 3 V steps for one
  pass (store_all), V (V + 1) + 3 V when every backward step may recompute (and then free)
  every op before it (recompute_all, save_ops), 2 V (``dtr.THRASH_FACTOR`` + 1) for dtr, 12 V for chen (the best
  plan of its budget search and the one it is building, about 6 V steps each), 3 V per
  hierarchical block for ``optimal`` (at most ``hierarchical.MAX_BLOCKS`` blocks: every block
  may be recomputed once per block after it);
* ``optimal``: also its table (``hierarchical.MAX_CELLS`` costs of 8 bytes);
* ``checkmate``, ``checkmate_lp``: the model's rows as built and solved by HiGHS
  (:func:`.checkmate_model.model_bytes`) and V² steps.

Measured (tests/graphs/test_planner_bounds_reliability.py holds them): a step takes about 160 bytes
with its replay; recompute_all on a 300-op chain about 0.8 of its estimate, chen 0.6,
checkmate (the process's resident memory) about 0.6.
"""
from __future__ import annotations

from ...plans import limits
from ...errors import PolicyError
from ..costs import GraphCosts
from .checkmate_model import model_bytes
from .dtr_run import THRASH_FACTOR
from .hierarchical import MAX_BLOCKS, MAX_CELLS

STEP_BYTES = 200  # a GraphStep in a list: the tuple, its slot, its replayed counters (~160)
VIEW_BYTES = 200  # per op and per edge: the graph's views a planner builds on first use


def _steps(policy: str, ops: int) -> int:
    recomputing = ops * (ops + 1) + 3 * ops
    return {"store_all": 3 * ops, "recompute_all": recomputing, "save_ops": recomputing,
            "dtr": 2 * ops * (THRASH_FACTOR + 1), "chen": 12 * ops,
            "optimal": 3 * ops * min(ops, MAX_BLOCKS)}.get(policy, ops * ops)


def estimate(policy: str, ops: int, edges: int) -> int:
    """Bytes that planning a graph of ``ops`` ops and ``edges`` edges with ``policy`` may take
    (see the module docstring)."""
    total = STEP_BYTES * _steps(policy, ops) + VIEW_BYTES * (ops + edges)
    if policy == "optimal":
        total += 8 * MAX_CELLS
    if policy.startswith("checkmate"):
        total += model_bytes(ops, edges)
    return total


def require_fits(policy: str, costs: GraphCosts) -> None:
    """Refuse (PolicyError, one line) a graph whose planning estimate is above the planner
    memory limit, naming the estimate, the limit and the largest graph that fits."""
    ops = len(costs.op_nodes)
    per_op = sum(len(p) for p in costs.parents) / max(ops, 1)

    def needs(count: int) -> int:
        return estimate(policy, count, round(per_op * count))

    limit = limits.current()
    if needs(ops) <= limit.memory_bytes:
        return
    largest = limits.largest_n(lambda count: needs(count) <= limit.memory_bytes)
    fits = (f"the largest graph of this shape that fits has {largest:,} ops" if largest
            else "no graph of this shape fits")
    raise PolicyError(f"policy {policy!r}: planning this graph of {ops:,} ops needs about "
                      f"{needs(ops):,} bytes, more than the planner memory limit of "
                      f"{limit.memory_bytes:,} bytes ({limit.source}); {fits}")
