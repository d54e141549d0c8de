"""Which plan to run under a memory budget: every applicable policy configuration of both
families planned (nothing run beyond the profiling or structure pass), predicted, and ranked.

:func:`recommend` plans a workload with

* for a **chain** workload: the chain policies on its chain (``store_all``, ``recompute_all``,
  ``sqrt_n`` and ``revolve`` over a few segment and slot counts, ``optimal`` with and without
  held tapes, given the budget), *and* the graph policies
  on the same chain traced as a graph (:func:`chain_as_graph`);
* for a **graph** workload: the graph policies (``store_all``, ``recompute_all``, ``save_ops``,
  and the budget-driven ``optimal``, ``cpsat``, ``checkmate``, ``checkmate_lp``, ``dtr`` with each
  heuristic, ``chen``, given the budget itself).

Every candidate carries the **predicted peak**: the executor's full activation peak (stored
values or checkpoints, tapes, the working value, cotangents; bytes), from running its plan on
placeholders (the chain Meter also counts the executor's own copy of x_0; graph inputs are
pinned and not counted), and its **overhead**: its forward cost over store_all's forward cost
in the same family (1.0 = nothing recomputed). Chain costs are the planning costs of
``costs`` ("model", "unit" or "measure", as in experiments); graph ops cost 1 each. Candidates
that fit are ranked by overhead, then peak; the others say why they were skipped.

With a ``bandwidth`` (bytes per cost unit, docs/offload_model.md, docs/chain_offload.md) the
graph policies that take one (``optimal`` and ``dtr``) get it and may move values to host
memory, the chain ``optimal`` is planned with it too (a third chain ``optimal`` candidate,
beside the two recompute-only ones), and candidates are ranked by their **time overhead**
first: predicted time over store_all's in the same family. A graph plan's time is its
``.time``; a chain plan's its :func:`~checkpoint_ad.chains.replay.plan_time` on the chain's
planning costs: without transfers its forward cost plus the backward steps at twice the
forward cost of each stage (the offload model's default, which graph plans without transfers
follow too), so that both families are ranked alike. The bandwidth is in each family's cost
unit: a chain's planning cost (one per stage with ``costs="unit"``), a graph's op.

``budget_bytes`` means the same in both families, the executor's full activation peak, so the
budget-driven planners of both get the budget itself.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from ..chains import policies as chain_policies
from ..chains.chain import Chain, ChainProfile, profile_chain
from ..chains.costs import ChainCosts
from ..chains.plans import Plan
from ..chains.replay import forward_cost, peak_bytes, plan_time
from ..engine import rng
from ..engine.primitives import sum as sum_all
from ..checks import real_number, whole_number
from ..errors import ArgumentError, BudgetError, CheckpointADError, UnknownNameError
from ..graphs import policies as graph_policies
from ..graphs.backprop import trace_function
from ..graphs.executor import predict_meter as predict_graph
from ..graphs.plans import GraphPlan
from ..graphs.policies.dtr import HEURISTICS
from ..graphs.program import Program
from ..plans.transfers import bandwidth_value
from ..workloads import chain_models
from ..workloads.graph_models import GraphWorkload
from ..workloads.user import build_workload, family_of
from .points import plain_params, planning_costs

DEFAULT_TIME_LIMIT = 2.0  # seconds for each slow graph planner (exact search, HiGHS)
MILP_OPS_LIMIT = 100  # past this many ops HiGHS overruns its time limit: the MILPs are not tried
Progress = Callable[[int, int, str], None]  # (done, total, what comes next)
# how a configuration is planned: a call giving (plan, predicted peak, cost), or why it is not
Make = Callable[[], tuple[Any, int, float]] | str
Configurations = Iterator[tuple[str, dict[str, Any], Make]]


@dataclass(frozen=True)
class Reference:
    """store_all's forward ``cost`` and ``time`` in one family (cost units of that family);
    ``chain_costs``: the chain's planning costs, which time a chain plan."""

    cost: float
    time: float
    chain_costs: ChainCosts | None = None

    def time_of(self, plan: Any, cost: float) -> float:
        """The predicted time of ``plan`` of forward cost ``cost``: a graph plan's ``.time``;
        a chain plan's :func:`plan_time` (no transfer: ``cost`` plus the backward time
        store_all's has)."""
        if self.chain_costs is not None:
            return plan_time(plan, self.chain_costs)
        time = getattr(plan, "time", None)
        return cost + self.time - self.cost if time is None else float(time)


@dataclass(frozen=True)
class Candidate:
    """One planned configuration. ``peak_bytes`` (predicted, see the module docstring),
    ``overhead`` (cost over store_all's in the same family), ``cost``, ``forward_evals``,
    ``time`` (predicted, cost units) and ``time_overhead`` (time over store_all's in the same
    family) are None when no plan was made; ``skipped`` is None for a plan within the budget,
    else why it was skipped (over budget, infeasible, error). ``solve_s``: planning seconds."""

    family: str
    policy: str
    params: dict[str, Any]
    peak_bytes: int | None
    overhead: float | None
    cost: float | None
    forward_evals: int | None
    solve_s: float
    skipped: str | None = None
    plan: Plan | GraphPlan | None = field(default=None, repr=False, compare=False)
    time: float | None = None
    time_overhead: float | None = None

    @property
    def fits(self) -> bool:
        return self.skipped is None

    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.family} {self.policy}" + (f"({shown})" if shown else "")

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "policy": self.policy,
                "params": plain_params(_listed(self.params)), "peak_bytes": self.peak_bytes,
                "overhead": self.overhead, "cost": self.cost,
                "forward_evals": self.forward_evals, "time": self.time,
                "time_overhead": self.time_overhead, "solve_s": round(self.solve_s, 6),
                "fits": self.fits, "skipped": self.skipped}


def _listed(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


@dataclass(frozen=True)
class Recommendation:
    """The ranked candidates for ``workload`` (its ``family`` and resolved ``sizes``) under
    ``budget_bytes``: those that fit first, by overhead then peak (with a ``bandwidth``, bytes
    per cost unit: by time overhead, then overhead, then peak); the skipped ones after."""

    workload: str
    family: str
    sizes: dict[str, Any]
    budget_bytes: int
    candidates: tuple[Candidate, ...]
    bandwidth: float | None = None

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates and self.candidates[0].fits else None

    @property
    def least_peak(self) -> int | None:
        """The least predicted peak any plan made reaches (bytes), or None if none was made."""
        return min((c.peak_bytes for c in self.candidates if c.peak_bytes is not None),
                   default=None)

    def require_best(self) -> Candidate:
        """The best candidate; :class:`BudgetError` naming the least peak when none fits."""
        if self.best is None:
            least = self.least_peak
            reach = (f"the least peak any plan reaches is {least:,} bytes" if least is not None
                     else "no policy could plan it")
            raise BudgetError(f"recommend: no plan of {self.workload} fits budget "
                              f"{self.budget_bytes:,} bytes; {reach}")
        return self.best

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload, "family": self.family, "sizes": dict(self.sizes),
                "budget_bytes": self.budget_bytes, "bandwidth": self.bandwidth,
                "least_peak_bytes": self.least_peak,
                "best": None if self.best is None else self.best.to_dict(),
                "candidates": [c.to_dict() for c in self.candidates]}


# -- a chain traced as a graph ------------------------------------------------------------------

def _chain_function(chain: Chain, seed: int, x0: Any, *groups: Any) -> Any:
    """The chain's stages applied to ``x0`` (stage t under the random stream ``(seed, t)``, as
    the chain executor runs it), then the chain's default loss, the sum of ``x_n``."""
    index = {id(group): k for k, group in enumerate(chain.parameter_groups())}
    x = x0
    for t, stage in enumerate(chain.stages, 1):
        params = None if stage.params is None else groups[index[id(stage.params)]]
        token = rng.enter_stage(seed, t)
        try:
            x = stage.fn(x, params)
        finally:
            rng.leave_stage(token)
    return sum_all(x)


def chain_as_graph(workload: chain_models.Workload, seed: int = 0) -> GraphWorkload:
    """The chain workload as a graph workload: ``fn(x0, *params)`` is the sum of ``x_n``, its
    arguments ``x0`` then each distinct params object of the chain (shared ones once), all
    differentiated. ``seed`` is the run seed of the stages' random streams (as
    :func:`~checkpoint_ad.chains.backprop.backprop`'s)."""
    chain = workload.chain
    return GraphWorkload(workload.name, dict(workload.sizes),
                         partial(_chain_function, chain, seed),
                         (workload.x0, *chain.parameter_groups()))


def trace_program(workload: GraphWorkload, seed: int = 0) -> Program:
    """The structure pass over ``workload`` (no value kept beyond its use), compiled."""
    return trace_function(workload.fn, *workload.args, argnums=workload.argnums,
                          seed=seed).program


# -- planning one configuration -------------------------------------------------------------------

def _planned(family: str, policy: str, params: dict[str, Any], budget: int,
             make: Make, reference: Reference) -> Candidate:
    """``make()`` → (plan, predicted peak, cost), as a candidate; the package's own errors
    become the reason it was skipped (``make`` a string: why it is not tried)."""
    started = time.perf_counter()
    if isinstance(make, str):
        return Candidate(family, policy, params, None, None, None, None, 0.0,
                         f"not tried: {make}")
    try:
        plan, peak, cost = make()
    except CheckpointADError as error:
        kind = "infeasible" if isinstance(error, BudgetError) else "error"
        return Candidate(family, policy, params, None, None, None, None,
                         time.perf_counter() - started, f"{kind}: {' '.join(str(error).split())}")
    over = None if peak <= budget else f"over budget: predicted peak {peak:,} bytes"
    predicted = reference.time_of(plan, cost)
    return Candidate(family, policy, {**params, **dict(plan.params)}, int(peak),
                     cost / reference.cost, cost, plan.forward_evals,
                     time.perf_counter() - started, over, plan, predicted,
                     predicted / reference.time)


def _small_counts(n: int) -> list[int]:
    """Slot and segment counts to try: powers of two below n, ceil(sqrt(n)), and n."""
    counts = {1 << k for k in range(1, max(1, n.bit_length()))} | {math.isqrt(n - 1) + 1, n}
    return sorted(c for c in counts if 1 <= c <= n)


def _chain_candidates(profile: ChainProfile, costs: ChainCosts, budget: int,
                      bandwidth: float | None = None) -> Configurations:
    """(policy, params, make) of every chain configuration; with a ``bandwidth`` (bytes per
    cost unit), ``optimal`` planned with it too."""
    def fixed(policy: str, **params: Any) -> Callable[[], tuple]:
        def make() -> tuple:
            plan = chain_policies.make_plan(policy, costs, **params)
            return plan, peak_bytes(plan, costs), forward_cost(plan, costs)
        return make

    yield "store_all", {}, fixed("store_all")
    yield "recompute_all", {}, fixed("recompute_all")
    for segments in _small_counts(costs.n):
        yield "sqrt_n", {"segments": segments}, fixed("sqrt_n", segments=segments)
    for slots in _small_counts(costs.n):
        yield "revolve", {"slots": slots}, fixed("revolve", slots=slots)
    for tapes in (True, False):
        yield "optimal", {"tapes": tapes}, fixed("optimal", budget_bytes=budget, tapes=tapes)
    if bandwidth:
        yield "optimal", {"bandwidth": bandwidth}, fixed("optimal", budget_bytes=budget,
                                                         bandwidth=bandwidth)


def _graph_candidates(program: Program, budget: int, time_limit: float,
                      bandwidth: float | None = None) -> Configurations:
    """(policy, params, make) of every graph configuration; the policies that take a
    ``bandwidth`` (bytes per cost unit) get it, when given."""
    def planned(policy: str, **params: Any) -> Callable[[], tuple]:
        if bandwidth and _takes_bandwidth(policy):
            params["bandwidth"] = bandwidth

        def make() -> tuple:
            plan = graph_policies.plan_graph(policy, program.costs, **params)
            return plan, predict_graph(program, plan).peak, plan.cost
        return make

    for policy in ("store_all", "recompute_all", "save_ops"):
        yield policy, {}, planned(policy)
    ops = len(program.costs.op_nodes)
    for policy in ("optimal", "cpsat", "checkmate", "checkmate_lp"):
        params = {"budget_bytes": budget, "time_limit": time_limit}
        if policy.startswith("checkmate") and ops > MILP_OPS_LIMIT:
            yield policy, params, (f"{ops} ops, more than the {MILP_OPS_LIMIT} for which "
                                   f"HiGHS keeps to its time limit; plan it alone with "
                                   f"`checkpoint-ad plan --policy {policy}`")
            continue
        yield policy, params, planned(policy, **params)
    for heuristic in HEURISTICS:
        params = {"budget_bytes": budget, "heuristic": heuristic}
        yield "dtr", params, planned("dtr", **params)
    yield "chen", {"budget_bytes": budget}, planned("chen", budget_bytes=budget)


def _takes_bandwidth(policy: str) -> bool:
    """Whether graph policy ``policy`` plans transfers (has a ``bandwidth`` parameter)."""
    return any(p.name == "bandwidth" for p in graph_policies.get_policy(policy).parameters)


# -- the recommendation ---------------------------------------------------------------------------

def _selected(configurations: Configurations, chosen: set[str] | None
              ) -> list[tuple[str, dict[str, Any], Make]]:
    return [c for c in configurations if chosen is None or c[0] in chosen]


def _check_policies(policies: Iterable[str] | None, families: Iterable[str]) -> set[str] | None:
    """The policy names asked for, each registered in one of ``families`` (None: all)."""
    if policies is None:
        return None
    chosen = set([policies] if isinstance(policies, str) else policies)
    known = {"chain": chain_policies.names(), "graph": graph_policies.names()}
    offered = [name for family in families for name in known[family]]
    unknown = sorted(chosen - set(offered))
    if unknown or not chosen:
        raise UnknownNameError(f"recommend: unknown policy {', '.join(map(repr, unknown))}; "
                               f"policies for this workload: "
                               f"{', '.join(dict.fromkeys(offered))}")
    return chosen


def _reference(plan_cost: Callable[[], float], backward: float, family: str) -> Reference:
    """store_all's forward cost and time (its cost plus ``backward``, the time of its backward
    steps) in ``family``; refused unless the cost is positive."""
    cost = plan_cost()
    if not cost > 0:
        raise BudgetError(f"recommend: store_all's forward cost on the {family} is {cost}; "
                          f"overheads need a positive cost")
    return Reference(cost, cost + backward)


def _rank(candidate: Candidate, by_time: bool) -> tuple:
    """The sort key: those that fit first, by time overhead (when ``by_time``), overhead, then
    peak; the others by whether a plan was made, then peak."""
    if candidate.fits:
        return (False, candidate.time_overhead if by_time else 0.0, candidate.overhead,
                False, candidate.peak_bytes)
    return (True, 0.0, 0.0, candidate.peak_bytes is None, candidate.peak_bytes or 0)


def recommend(workload: str, sizes: Mapping[str, Any] | None, budget_bytes: int,
              family: str | None = None, seed: int = 0, dtype: str = "float64",
              costs: str = "model", policies: Iterable[str] | None = None,
              time_limit: float = DEFAULT_TIME_LIMIT,
              progress: Progress | None = None,
              bandwidth: float | None = None) -> Recommendation:
    """Plan every applicable policy configuration for ``workload`` (a registered name, its
    ``family`` resolved by :func:`~.graph_models.workload_family`, or a user's
    ``FILE.py:FUNCTION``, see :mod:`~checkpoint_ad.workloads.user`) with ``sizes``, ``seed``
    and ``dtype`` under ``budget_bytes`` (predicted full activation peak, bytes), and rank them
    (see the module docstring). ``costs`` is the chain planning cost mode; ``policies`` restricts the policy
    names (in either family); ``time_limit`` is given to each slow graph planner (seconds);
    ``progress(done, total, next label)`` is called before each configuration is planned.
    ``bandwidth`` (bytes per cost unit; None or 0: no offload) goes to the graph policies that
    take one and to the chain ``optimal``, and ranks by predicted time (see the module
    docstring)."""
    budget_bytes = whole_number(budget_bytes, "recommend: budget_bytes (bytes)", minimum=1)
    time_limit = real_number(time_limit, "recommend: time_limit (seconds)")
    speed = bandwidth_value(bandwidth, "recommend", ArgumentError)
    built = build_workload(workload, sizes, seed, dtype, family)
    kind = family_of(built)
    families = ("chain", "graph") if kind == "chain" else ("graph",)
    chosen = _check_policies(policies, families)
    jobs: list[tuple[str, str, dict[str, Any], Make, Reference]] = []
    if isinstance(built, chain_models.Workload):
        profile = profile_chain(built.chain, built.x0, seed)
        chain_costs = profile.costs(planning_costs(built, costs))
        forward = math.fsum(chain_costs.compute)
        backward = math.fsum(chain_costs.backward_costs)  # twice the forward by default
        reference = replace(_reference(lambda: forward, backward, "chain"),
                            chain_costs=chain_costs)
        jobs += [("chain", *config, reference) for config in
                 _selected(_chain_candidates(profile, chain_costs, budget_bytes, speed), chosen)]
        traced, resolved = chain_as_graph(built, seed), dict(built.sizes)
    else:
        traced, resolved = built, dict(built.sizes)
    program = trace_program(traced, seed)
    reference = _reference(lambda: program.costs.total_cost, program.costs.total_backward_cost,
                           "graph")
    jobs += [("graph", *config, reference) for config in
             _selected(_graph_candidates(program, budget_bytes, time_limit, speed), chosen)]
    found = []
    for done, (where, policy, params, make, cost) in enumerate(jobs):
        if progress is not None:
            progress(done, len(jobs), f"{where} {policy}")
        found.append(_planned(where, policy, params, budget_bytes, make, cost))
    if progress is not None:
        progress(len(jobs), len(jobs), "done")
    ranked = sorted(found, key=partial(_rank, by_time=speed is not None))
    return Recommendation(workload, kind, resolved, budget_bytes, tuple(ranked), speed)
