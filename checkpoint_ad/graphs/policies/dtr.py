"""``dtr``: Dynamic Tensor Rematerialization (Kirisame et al., ICLR 2021) run as an online
simulation over the fixed program, under ``budget_bytes``.

The program is the forward pass (every op in index order) then the backward steps of
``costs.backward_order``. Before each step (and each recomputation) the simulation makes room
for the bytes the step adds (docs/graph_model.md: a compute adds its value; a backward step its
new cotangents, and the seed at the output) by **evicting** resident values, never one the step
or a pending recomputation reads (they are *pinned*). A step that reads an evicted value first
**rematerialises** it: its evicted op ancestors are computed, parents first, with an explicit
stack. A value with no remaining read in the program is freed at once (banishment); a later
rematerialisation may still recompute it, and while one is pending it is evicted first (DTR's
"infinite staleness" of values the program no longer references).

Eviction picks the resident value of least score (heuristic ``"dtr"`` by default):

* ``"dtr"`` is **h_DTR_eq**: (cost(t) + cost of the evicted neighbourhood e*(t)) /
  (size(t) · staleness(t)), where e*(t), the evicted values that recomputing t would need or
  that would need t, is approximated as in the paper by union-find equivalence classes: an
  evicted value joins the classes of its evicted parents and consumers, and a recomputed one
  leaves its class (its cost is subtracted; the union stays, as the paper's prototype does);
* ``"local"`` is **h_DTR_local**: cost(t) / (size(t) · staleness(t)) (no neighbourhood);
* ``"lru"``: the stalest value first (staleness only); ``"size"``: the largest first (the
  stalest among equal sizes);
* ``"next_use"`` is offline: h_DTR_eq with staleness replaced by the distance, in program steps, to
  the value's next read, plus one (a value read by the next step has distance 2). DTR runs online
  and must guess the future from the past; here the program is known before it runs, so the value
  needed last goes first, as in Belady's rule for caches, weighted by what recomputing it costs.
  Measured on traced U-Nets of about 200 and 1,000 ops (``benchmarks/graph_scale.py``), it plans
  15% cheaper than ``"dtr"`` at half of store_all's peak and 8% at 70%; on residual stacks and
  transformers the two are within 3%, except transformers at 30%, where it thrashes (18% dearer at
  192 ops, 2x at 990).

Staleness is counted in program and recomputation steps since the value was last computed or
read. During the backward pass, values above the next backward step can never be read again
and leave their classes. The run is a plan of the vocabulary, built and replayed by
:meth:`GraphPlan.build`; ``details`` gives the evictions in order.

With a ``bandwidth`` (docs/offload_model.md) evictions may go to host memory where the
transfer hides behind compute (:mod:`.dtr_offload`), and the faster of the plans with and
without transfers is kept. The simulation itself is :mod:`.dtr_run`.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

from ...errors import BudgetError, PolicyError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_seconds
from ..costs import GraphCosts
from ..plans import GraphPlan
from ...plans.transfers import bandwidth_value, host_budget_value
from .dtr_offload import OffloadRun
from .dtr_run import THRASH_FACTOR, DtrRun

HEURISTICS = ("dtr", "local", "lru", "size", "next_use")


def plan_dtr(costs: GraphCosts, budget_bytes: int | None = None,
             heuristic: str = "dtr", time_limit: float | None = None,
             bandwidth: float | None = None,
             host_budget_bytes: int | None = None) -> GraphPlan:
    """DTR's run of the program under ``budget_bytes`` (None: no limit, then it equals
    store_all) with eviction ``heuristic`` (one of :data:`HEURISTICS`), refused when it
    lasts more than ``time_limit`` seconds (None: no limit). Each eviction scans the resident
    values (their scores change with the clock), so a run takes time quadratic in the ops
    when about half of them stay resident.

    ``bandwidth`` (bytes per cost unit; None or 0: none, the plan is the one above) lets
    evictions go to host memory where the transfer hides behind compute
    (:mod:`.dtr_offload`); the plan is then the one of least **time** of the runs with and
    without transfers (the recompute-only one among equals), and its details say which.
    ``host_budget_bytes`` (None: no limit) bounds the host copies alive at once; 0 plans as
    without a bandwidth."""
    budget = budget_value("dtr", budget_bytes)
    seconds = None if time_limit is None else positive_seconds("dtr", "time_limit", time_limit)
    speed = bandwidth_value(bandwidth, "policy 'dtr'", PolicyError)
    host = host_budget_value(host_budget_bytes, "policy 'dtr'", PolicyError)
    if heuristic not in HEURISTICS:
        raise PolicyError(f"policy 'dtr': heuristic must be one of {', '.join(HEURISTICS)}, "
                          f"got {heuristic!r}")
    started = time.perf_counter()
    deadline = math.inf if seconds is None else started + seconds
    params: dict[str, object] = {"heuristic": heuristic}
    if budget_bytes is not None:
        params["budget_bytes"] = budget_bytes
    if speed:  # None or 0: the plan of no bandwidth, its params too
        params["bandwidth"] = bandwidth
        if host_budget_bytes is not None:
            params["host_budget_bytes"] = host_budget_bytes
    run = DtrRun(costs, budget, budget_bytes, heuristic, seconds, deadline)
    if not speed or not host:
        return GraphPlan.build(costs, run.run(), "dtr", params, method="heuristic",
                               solve_s=time.perf_counter() - started,
                               details={"evictions": tuple(run.evicted)})
    moving = OffloadRun(costs, budget, budget_bytes, heuristic, seconds, deadline,
                        bandwidth=speed, host_budget=host)
    return _faster(costs, params, speed, started, run, moving)


def _faster(costs: GraphCosts, params: dict, bandwidth: float, started: float,
            *runs: DtrRun) -> GraphPlan:
    """The plan of least time (cost units) of ``runs`` (the first among equals); a run that
    finds no plan within the budget is left out, unless none finds one."""
    plans, refusal = [], None
    for run in runs:
        try:
            steps = run.run()
        except BudgetError as error:
            refusal = refusal or error
            continue
        moved = tuple(getattr(run, "offloaded", ()))
        plans.append(GraphPlan.build(costs, steps, "dtr", params, bandwidth,
                                     method="heuristic", details={
                                         "evictions": tuple(run.evicted), "offloaded": moved}))
    if not plans:
        raise refusal  # type: ignore[misc]
    best = min(plans, key=lambda plan: plan.time)  # type: ignore[arg-type, return-value]
    return replace(best, solve_s=time.perf_counter() - started, details={
        **best.details, "transfers": "planned" if best.transfers else "none saved time"})


SPEC = PolicySpec("dtr", "online eviction under a byte budget (Dynamic Tensor "
                  "Rematerialization, h_DTR_eq)", plan_dtr,
                  (Parameter("budget_bytes", int, None, "byte budget for activations "
                             "(values and cotangents); default: no limit"),
                   Parameter("heuristic", str, "dtr", "eviction score: dtr (h_DTR_eq), "
                             "local (h_DTR_local), lru (staleness only), size (largest first), "
                             "next_use (offline: h_DTR_eq with the distance to the next read "
                             "for staleness)"),
                   Parameter("time_limit", float, None, "seconds the run may take before it "
                             "is refused; default: no limit"),
                   Parameter("bandwidth", float, None,
                             "bytes per cost unit between device and host memory: evictions "
                             "go to the host where the transfer hides behind compute, and "
                             "the faster of the plans with and without transfers is kept "
                             "(docs/offload_model.md); default: no offload"),
                   Parameter("host_budget_bytes", int, None,
                             "byte budget for host copies (with a bandwidth); default: no "
                             "limit")))

__all__ = ["HEURISTICS", "SPEC", "THRASH_FACTOR", "plan_dtr"]
