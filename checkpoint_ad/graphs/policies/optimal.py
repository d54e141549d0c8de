"""``optimal``: the least-cost graph plan under ``budget_bytes`` (exact search, see
:mod:`.exact`; past it a portfolio of heuristics improved and bounded by CP-SAT, see
:mod:`.cpsat`); with a ``bandwidth``, the least-time plan that may also move values to host
memory and back (docs/offload_model.md; exact search, see :mod:`.exact_offload`)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from ...errors import BudgetError, PolicyError, TimeLimitError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_int, positive_seconds
from ..costs import GraphCosts
from ..floors import closure_bound, least_peak_floor
from ..plans import GraphPlan
from ..transfers import bandwidth_value
from . import exact
from .exact_offload import OffloadSpace
from .checkmate import plan_checkmate
from .chen import plan_chen
from .cpsat import plan_cpsat
from .dtr import plan_dtr
from .fixed import plan_store_all
from .hierarchical import plan_hierarchical

DEFAULT_TIME_LIMIT = 10.0
EXACT_OPS_LIMIT = 40  # past this, the state space is out of reach: plan hierarchically at once
MILP_OPS_LIMIT = 40  # Checkmate's MILP finds plans within seconds only on graphs this small
CPSAT_OPS_LIMIT = 100_000  # CP-SAT improves the portfolio's plan on graphs up to this size
METHODS = ("auto", "hierarchical")


def minimum_budget(costs: GraphCosts, max_states: int = exact.DEFAULT_MAX_STATES,
                   bandwidth: float | None = None) -> int:
    """The least peak of any plan (with transfers at ``bandwidth`` bytes per cost unit, when
    given): the smallest feasible budget, in bytes."""
    space = OffloadSpace(costs, bandwidth) if bandwidth else None
    return int(exact.search(costs, math.inf, max_states, minimise_peak=True, space=space)[2])


def plan_optimal(costs: GraphCosts, budget_bytes: int | None = None,
                 max_states: int = exact.DEFAULT_MAX_STATES,
                 time_limit: float = DEFAULT_TIME_LIMIT, method: str = "auto",
                 bandwidth: float | None = None, workers: int = 1,
                 cpsat: bool = True) -> GraphPlan:
    """The least-cost plan whose peak fits ``budget_bytes`` (None: no limit). ``method="auto"``:
    proven by exact search when it finishes within ``max_states`` states and ``time_limit`` seconds
    (half of it on graphs of at most :data:`MILP_OPS_LIMIT` ops), else the cheapest of the
    hierarchical plan (a sequence of blocks, several options each; :mod:`.hierarchical`), ``dtr``
    (online, and offline ``next_use``), ``chen`` and, on graphs of at most :data:`MILP_OPS_LIMIT`
    ops, Checkmate's MILP, sharing the rest of ``time_limit`` (:func:`_past_exact_search`), then
    CP-SAT (:mod:`.cpsat`, ``workers`` threads) hinted with the cheapest of them, in the time
    left, which returns a plan never dearer than its hint, a lower bound valid for every plan
    and status "optimal" when it proves it. ``method="hierarchical"``: the hierarchical plan alone, without exact search, within
    ``time_limit``. The limit bounds the whole call; a refusal for lack of time is a
    :class:`~checkpoint_ad.errors.TimeLimitError`.

    ``bandwidth`` (bytes per cost unit; None or 0: none) lets values move to host memory and
    back: exact search then minimises the plan's **time** (docs/offload_model.md). Past exact
    search the portfolio's ``dtr`` members plan transfers too, and the plan of least time is
    chosen; with ``method="hierarchical"`` transfers are not planned: the plan is the
    recompute-only one, and its details say so. ``cpsat=False`` leaves CP-SAT out: past exact
    search the plan is the portfolio's, bounded by the closure bound alone (what ``optimal``
    was before CP-SAT; benchmarks compare the two)."""
    budget = budget_value("optimal", budget_bytes)
    speed = bandwidth_value(bandwidth, "policy 'optimal'", PolicyError)
    max_states = positive_int("optimal", "max_states", max_states)
    limit = positive_seconds("optimal", "time_limit", time_limit)
    workers = positive_int("optimal", "workers", workers)
    if method not in METHODS:
        raise PolicyError(f"policy 'optimal': method must be one of {', '.join(METHODS)}, "
                          f"got {method!r}")
    params = {} if budget_bytes is None else {"budget_bytes": budget_bytes}
    if method != "auto":
        params["method"] = method
    if bandwidth is not None:
        params["bandwidth"] = bandwidth
    if workers != 1:
        params["workers"] = workers
    if not cpsat:
        params["cpsat"] = False
    started = time.perf_counter()
    if method == "hierarchical":
        plan = plan_hierarchical(costs, budget, "optimal", params, limit)
        return replace(plan, solve_s=time.perf_counter() - started, details=_unmoved(plan, speed))
    if budget >= plan_store_all(costs).peak_bytes:  # store_all fits: nothing to trade
        return GraphPlan.build(costs, plan_store_all(costs).steps, "optimal", params,
                               method="exact", status="optimal", lower_bound=costs.total_cost)
    milp = len(costs.op_nodes) <= MILP_OPS_LIMIT
    try:
        if len(costs.op_nodes) > EXACT_OPS_LIMIT:
            raise exact.SearchLimit(f"the graph has {len(costs.op_nodes)} ops; exact search "
                                    f"handles graphs up to about {EXACT_OPS_LIMIT}")
        deadline = started + (limit / 2 if milp else limit)
        space = OffloadSpace(costs, speed, budget, deadline) if speed else None
        steps, cost, _ = exact.search(costs, budget, max_states, deadline=deadline, space=space)
    except exact.SearchLimit as limit_reached:
        plan = _past_exact_search(costs, budget, params, (started, limit), limit_reached, milp,
                                  speed, workers if cpsat else 0)
        return replace(plan, details=_unmoved(plan, speed))
    except BudgetError:
        raise _below_minimum(costs, budget_bytes, max_states, speed) from None
    if speed:  # ``cost`` is the least time; every plan computes each op at least once
        return GraphPlan.build(costs, steps, "optimal", params, speed, method="exact",
                               status="optimal", lower_bound=costs.total_cost,
                               solve_s=time.perf_counter() - started,
                               details={"objective": "time"})
    return GraphPlan.build(costs, steps, "optimal", params, method="exact", status="optimal",
                           lower_bound=cost, solve_s=time.perf_counter() - started)


def _unmoved(plan: GraphPlan, bandwidth: float | None) -> dict:
    """The details of a plan past exact search: when a bandwidth was given but the plan
    holds no transfer, they say that transfers were not planned."""
    if not bandwidth or plan.transfers:
        return dict(plan.details)
    return {**plan.details, "transfers": "not planned past exact search"}


MINIMUM_SEARCH_STATES = 50_000  # naming the least budget is a courtesy: it must stay quick


def _below_minimum(costs: GraphCosts, budget_bytes: object, max_states: int,
                   bandwidth: float | None = None) -> BudgetError:
    """The error for a budget exact search proved no plan meets, naming the least budget when
    a short search finds it."""
    try:
        least = minimum_budget(costs, min(max_states, MINIMUM_SEARCH_STATES), bandwidth)
    except exact.SearchLimit:
        return BudgetError(f"policy 'optimal': no plan of this {len(costs.op_nodes)}-op graph "
                           f"fits budget_bytes={budget_bytes} (exact search proved it); give "
                           f"a larger budget (none fits below {least_peak_floor(costs):,} bytes)")
    return BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                       f"of {least} bytes for this graph")


def _past_exact_search(costs: GraphCosts, budget: float, params: dict,
                       clock: tuple[float, float], reason: Exception, milp: bool,
                       bandwidth: float | None = None, workers: int = 1,
                 cpsat: bool = True) -> GraphPlan:
    """Past exact search: the cheapest of the plans of ``dtr`` (its online h_DTR_eq and its
    offline ``next_use``), ``chen``, the hierarchical plan and, where ``milp``, Checkmate's
    MILP at the same budget (so never worse than any), each replayed and checked; ``method``
    names the one chosen. ``clock`` is (start, time_limit): they run fastest first, each
    within an even share of the time left (a member that finishes early leaves its time to
    the next); one out of time is left out, and the plan's details name it. Then CP-SAT
    improves the cheapest in the time left (:func:`_certified`). With a ``bandwidth`` (bytes
    per cost unit) the ``dtr`` members may move values to host memory and the plan of least
    **time** is chosen (``tried`` then gives each one's time; CP-SAT, which plans cost, is not
    run, and the bound stays every op once). ``workers`` 0: CP-SAT is not run."""
    started, limit = clock
    candidates, refusals, late = [], [f"exact search could not decide ({reason})"], []
    members = _members(costs, int(budget), milp, bandwidth)
    certify = workers > 0 and not bandwidth and len(costs.op_nodes) <= CPSAT_OPS_LIMIT
    shares = len(members) + certify  # CP-SAT's share last
    for count, (method, planner) in enumerate(members):
        share = (started + limit - time.perf_counter()) / (shares - count)
        try:
            if share <= 0:
                raise TimeLimitError(f"policy 'optimal': no time left for {method}")
            candidates.append((method, planner(share)))
        except TimeLimitError as error:
            late.append(method)
            refusals.append(f"{method}: {error}")
        except PolicyError as error:
            refusals.append(f"{method}: {error}")
    if not candidates:
        raise _nothing_fits(costs, int(budget), limit, late, refusals)
    method, best = min(candidates, key=lambda found: (
        found[1].time if bandwidth else found[1].cost, found[1].peak_bytes,
        PREFERENCE.index(found[0])))
    details = {"tried": {m: p.time if bandwidth else p.cost for m, p in candidates}}
    if late:
        details["out_of_time"] = tuple(late)
    if bandwidth:  # least time: CP-SAT plans cost; every plan computes each op once
        best = replace(best, lower_bound=costs.total_cost, status="feasible")
    else:
        bound = closure_bound(costs, budget, started + limit)  # valid for every plan (..floors)
        best = replace(best, lower_bound=bound,
                       status="optimal" if bound >= best.cost else "feasible")
    if certify and best.status != "optimal":
        method, best = _certified(costs, budget, best, method, started + limit, workers,
                                  details)
    return replace(best, policy="optimal", params=params, method=method,
                   solve_s=time.perf_counter() - started, details=details)  # already replayed


def _certified(costs: GraphCosts, budget: float, best: GraphPlan, method: str,
               deadline: float, workers: int, details: dict) -> tuple[str, GraphPlan]:
    """CP-SAT hinted with ``best`` until ``deadline``: (method, plan) of the cheaper of the
    two, carrying CP-SAT's lower bound (valid for every plan) and status. ``details`` gets
    CP-SAT's cost, bound and whether its model was complete."""
    left = deadline - time.perf_counter()
    if left <= 0:
        details.setdefault("out_of_time", ())
        details["out_of_time"] += ("cpsat",)
        return method, best
    try:
        solved = plan_cpsat(costs, int(budget), time_limit=left, workers=workers, hint=best)
    except PolicyError as error:  # out of time building its model: the portfolio's plan
        details["cpsat"] = str(error)
        return method, best
    details["tried"]["cpsat"] = solved.cost
    details["cpsat"] = {key: solved.details.get(key) for key in
                        ("complete", "solver_status", "solver_bound", "max_computations")}
    bound = max(best.lower_bound or 0, solved.lower_bound or 0)
    if solved.cost < best.cost:
        return "cpsat", replace(solved, lower_bound=bound)
    return method, replace(best, lower_bound=bound,
                           status="optimal" if bound >= best.cost else best.status)


PREFERENCE = ("hierarchical", "dtr", "dtr:next_use", "chen", "milp", "cpsat")  # among equal plans


def _members(costs: GraphCosts, budget_bytes: int, milp: bool, bandwidth: float | None = None
             ) -> list[tuple[str, Callable[[float], GraphPlan]]]:
    """The planners past exact search, fastest first: (method, planner of a time limit);
    the ``dtr`` members get ``bandwidth``."""
    members = [
        ("dtr", lambda seconds: plan_dtr(costs, budget_bytes=budget_bytes, time_limit=seconds,
                                         bandwidth=bandwidth)),
        ("dtr:next_use", lambda seconds: plan_dtr(costs, budget_bytes=budget_bytes,
                                                  heuristic="next_use", time_limit=seconds,
                                                  bandwidth=bandwidth)),
        ("chen", lambda seconds: plan_chen(costs, budget_bytes=budget_bytes,
                                           time_limit=seconds)),
        ("hierarchical", lambda seconds: plan_hierarchical(costs, budget_bytes,
                                                           time_limit=seconds))]
    if milp:
        members.append(("milp", lambda seconds: plan_checkmate(
            costs, budget_bytes=budget_bytes, time_limit=seconds)))
    return members


def _nothing_fits(costs: GraphCosts, budget_bytes: int, limit: float, late: list[str],
                  refusals: list[str]) -> BudgetError:
    """The refusal when no planner past exact search found a plan: out of time when any of
    them ran out of its share (a larger time limit may find one)."""
    where = f"this {len(costs.op_nodes)}-op graph"
    if late:
        return TimeLimitError(f"policy 'optimal': no plan of {where} within budget_bytes="
                              f"{budget_bytes} was found within time_limit={limit:g} s "
                              f"({', '.join(late)} ran out of time); raise time_limit; "
                              + "; ".join(refusals))
    return BudgetError(f"policy 'optimal': no planner fits budget_bytes={budget_bytes} on "
                       f"{where} (no plan fits below {least_peak_floor(costs):,} bytes); "
                       + "; ".join(refusals))


SPEC = PolicySpec("optimal", "the least-cost plan under a byte budget (exact search; past "
                  "its limits the cheapest of a hierarchical plan, dtr, chen and, up to "
                  f"{MILP_OPS_LIMIT} ops, Checkmate's MILP, improved and bounded by CP-SAT)",
                  plan_optimal,
                  (Parameter("budget_bytes", int, None, "byte budget for activations "
                             "(values and cotangents); default: no limit"),
                   Parameter("max_states", int, exact.DEFAULT_MAX_STATES,
                             "states the exact search may expand before planning "
                             "hierarchically"),
                   Parameter("time_limit", float, DEFAULT_TIME_LIMIT,
                             "seconds the whole call may take: exact search (on graphs of at "
                             f"most {MILP_OPS_LIMIT} ops, half of them), then the planners "
                             "past it, each an even share of the rest"),
                   Parameter("method", str, "auto",
                             "auto (exact search, then the cheapest of hierarchical, dtr, "
                             "chen and the MILP, improved by CP-SAT) or hierarchical (the "
                             "block plan alone)"),
                   Parameter("bandwidth", float, None,
                             "bytes per cost unit between device and host memory: exact "
                             "search then minimises time, offloading values too; "
                             "past it, dtr's plans with transfers compete on time "
                             "(docs/offload_model.md); default: no offload"),
                   Parameter("workers", int, 1,
                             "CP-SAT's search threads past exact search (1: deterministic "
                             "up to the time limit)"),
                   Parameter("cpsat", bool, True,
                             "past exact search, improve and bound the portfolio's plan with "
                             "CP-SAT (false: the portfolio's plan and the closure bound)")))
