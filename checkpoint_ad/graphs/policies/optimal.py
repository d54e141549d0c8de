"""``optimal``: the least-cost graph plan under ``budget_bytes`` (exact search, see
:mod:`.exact`; past it a portfolio of heuristics improved and bounded by CP-SAT, see
:mod:`.cpsat`)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace

from ...errors import BudgetError, PolicyError, TimeLimitError
from ...plans.registry import Parameter, PolicySpec, budget_value, positive_int, positive_seconds
from ..costs import GraphCosts
from ..floors import closure_bound
from ..plans import GraphPlan
from . import exact
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


def minimum_budget(costs: GraphCosts, max_states: int = exact.DEFAULT_MAX_STATES) -> int:
    """The least peak of any plan: the smallest feasible budget, in bytes."""
    return int(exact.search(costs, math.inf, max_states, minimise_peak=True)[2])


def plan_optimal(costs: GraphCosts, budget_bytes: int | None = None,
                 max_states: int = exact.DEFAULT_MAX_STATES,
                 time_limit: float = DEFAULT_TIME_LIMIT, method: str = "auto",
                 workers: int = 1) -> GraphPlan:
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
    :class:`~checkpoint_ad.errors.TimeLimitError`."""
    budget = budget_value("optimal", budget_bytes)
    max_states = positive_int("optimal", "max_states", max_states)
    limit = positive_seconds("optimal", "time_limit", time_limit)
    workers = positive_int("optimal", "workers", workers)
    if method not in METHODS:
        raise PolicyError(f"policy 'optimal': method must be one of {', '.join(METHODS)}, "
                          f"got {method!r}")
    params = {} if budget_bytes is None else {"budget_bytes": budget_bytes}
    if method != "auto":
        params["method"] = method
    if workers != 1:
        params["workers"] = workers
    started = time.perf_counter()
    if method == "hierarchical":
        plan = plan_hierarchical(costs, budget, "optimal", params, limit)
        return replace(plan, solve_s=time.perf_counter() - started)
    if budget >= plan_store_all(costs).peak_bytes:  # store_all fits: nothing to trade
        return GraphPlan.build(costs, plan_store_all(costs).steps, "optimal", params,
                               method="exact", status="optimal", lower_bound=costs.total_cost)
    milp = len(costs.op_nodes) <= MILP_OPS_LIMIT
    try:
        if len(costs.op_nodes) > EXACT_OPS_LIMIT:
            raise exact.SearchLimit(f"the graph has {len(costs.op_nodes)} ops; exact search "
                                    f"handles graphs up to about {EXACT_OPS_LIMIT}")
        steps, cost, _ = exact.search(costs, budget, max_states,
                                      deadline=started + (limit / 2 if milp else limit))
    except exact.SearchLimit as limit_reached:
        return _past_exact_search(costs, budget, params, (started, limit), limit_reached, milp,
                                  workers)
    except BudgetError:
        raise _below_minimum(costs, budget_bytes, max_states) from None
    return GraphPlan.build(costs, steps, "optimal", params, method="exact", status="optimal",
                           lower_bound=cost, solve_s=time.perf_counter() - started)


MINIMUM_SEARCH_STATES = 50_000  # naming the least budget is a courtesy: it must stay quick


def _below_minimum(costs: GraphCosts, budget_bytes: object, max_states: int) -> BudgetError:
    """The error for a budget exact search proved no plan meets, naming the least budget when
    a short search finds it."""
    try:
        least = minimum_budget(costs, min(max_states, MINIMUM_SEARCH_STATES))
    except exact.SearchLimit:
        return BudgetError(f"policy 'optimal': no plan of this {len(costs.op_nodes)}-op graph "
                           f"fits budget_bytes={budget_bytes} (exact search proved it); give "
                           f"a larger budget")
    return BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                       f"of {least} bytes for this graph")


def _past_exact_search(costs: GraphCosts, budget: float, params: dict,
                       clock: tuple[float, float], reason: Exception, milp: bool,
                       workers: int = 1) -> GraphPlan:
    """Past exact search: the cheapest of the plans of ``dtr`` (its online h_DTR_eq and its
    offline ``next_use``), ``chen``, the hierarchical plan and, where ``milp``, Checkmate's
    MILP at the same budget (so never worse than any), each replayed and checked; ``method``
    names the one chosen. ``clock`` is (start, time_limit): they run fastest first, each
    within an even share of the time left (a member that finishes early leaves its time to
    the next); one out of time is left out, and the plan's details name it. Then CP-SAT
    improves the cheapest in the time left (:func:`_certified`)."""
    started, limit = clock
    candidates, refusals, late = [], [f"exact search could not decide ({reason})"], []
    members = _members(costs, int(budget), milp)
    shares = len(members) + (len(costs.op_nodes) <= CPSAT_OPS_LIMIT)  # CP-SAT's share last
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
    method, best = min(candidates, key=lambda found: (found[1].cost, found[1].peak_bytes,
                                                      PREFERENCE.index(found[0])))
    details = {"tried": {m: p.cost for m, p in candidates}}
    if late:
        details["out_of_time"] = tuple(late)
    bound = closure_bound(costs, budget, started + limit)  # valid for every plan (..floors)
    best = replace(best, lower_bound=bound, status="optimal" if bound >= best.cost else "feasible")
    if len(costs.op_nodes) <= CPSAT_OPS_LIMIT and best.status != "optimal":
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


def _members(costs: GraphCosts, budget_bytes: int, milp: bool
             ) -> list[tuple[str, Callable[[float], GraphPlan]]]:
    """The planners past exact search, fastest first: (method, planner of a time limit)."""
    members = [
        ("dtr", lambda seconds: plan_dtr(costs, budget_bytes=budget_bytes, time_limit=seconds)),
        ("dtr:next_use", lambda seconds: plan_dtr(costs, budget_bytes=budget_bytes,
                                                  heuristic="next_use", time_limit=seconds)),
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
                       f"{where}; " + "; ".join(refusals))


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
                   Parameter("workers", int, 1,
                             "CP-SAT's search threads past exact search (1: deterministic "
                             "up to the time limit)")))
