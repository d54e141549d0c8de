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
from .. import solvers
from ..costs import GraphCosts
from ..floors import closure_bound, least_peak_floor
from ..plans import GraphPlan
from ...plans.transfers import bandwidth_value, host_budget_value
from . import exact
from .exact_offload import OffloadSpace
from .checkmate import plan_checkmate
from .chen import plan_chen
from .cpsat import plan_cpsat
from .cpsat_offload import improve_with_transfers
from .dtr import plan_dtr
from .fixed import plan_store_all
from .hierarchical import plan_hierarchical

DEFAULT_TIME_LIMIT = 10.0
EXACT_OPS_LIMIT = 40  # past this, the state space is out of reach: plan hierarchically at once
MILP_OPS_LIMIT = 40  # Checkmate's MILP finds plans within seconds only on graphs this small
OFFLOAD_EXACT_OPS_LIMIT = 12  # with transfers, one state has up to 4**resident moves
CPSAT_OPS_LIMIT = 100_000  # CP-SAT improves the portfolio's plan on graphs up to this size
METHODS = ("auto", "hierarchical")


def minimum_budget(costs: GraphCosts, max_states: int = exact.DEFAULT_MAX_STATES,
                   bandwidth: float | None = None, host_budget: float = math.inf) -> int:
    """The least peak of any plan (with transfers at ``bandwidth`` bytes per cost unit, when
    given, and host copies within ``host_budget`` bytes): the smallest feasible budget, in
    bytes."""
    space = OffloadSpace(costs, bandwidth, host_budget=host_budget) if bandwidth else None
    return int(exact.search(costs, math.inf, max_states, minimise_peak=True, space=space)[2])


def plan_optimal(costs: GraphCosts, budget_bytes: int | None = None,
                 max_states: int = exact.DEFAULT_MAX_STATES,
                 time_limit: float = DEFAULT_TIME_LIMIT, method: str = "auto",
                 bandwidth: float | None = None, workers: int = 1,
                 host_budget_bytes: int | None = None, cpsat: bool = True) -> GraphPlan:
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
    recompute-only one, and its details say so. ``host_budget_bytes`` (None: no limit) bounds
    the host copies alive at once, in exact search and past it; 0 plans as without a
    bandwidth. ``cpsat=False`` leaves CP-SAT out: past exact
    search the plan is the portfolio's, bounded by the closure bound alone (what ``optimal``
    was before CP-SAT; benchmarks compare the two)."""
    budget = budget_value("optimal", budget_bytes)
    speed = bandwidth_value(bandwidth, "policy 'optimal'", PolicyError)
    host = host_budget_value(host_budget_bytes, "policy 'optimal'", PolicyError)
    max_states = positive_int("optimal", "max_states", max_states)
    limit = positive_seconds("optimal", "time_limit", time_limit)
    workers = positive_int("optimal", "workers", workers)
    if method not in METHODS:
        raise PolicyError(f"policy 'optimal': method must be one of {', '.join(METHODS)}, "
                          f"got {method!r}")
    params = _recorded(budget_bytes=budget_bytes, method=method, bandwidth=bandwidth,
                       host_budget_bytes=host_budget_bytes, workers=workers, cpsat=cpsat)
    asked, speed = speed, (speed if host else None)  # no host memory: no transfer
    solvers.load(solvers.EVERY)  # its members' libraries, before its clock starts
    started = time.perf_counter()
    if method == "hierarchical":
        plan = plan_hierarchical(costs, budget, "optimal", params, limit)
        return replace(plan, solve_s=time.perf_counter() - started, details=_unmoved(plan, speed))
    if budget >= plan_store_all(costs).peak_bytes:  # store_all fits: nothing to trade
        return GraphPlan.build(costs, plan_store_all(costs).steps, "optimal", params,
                               method="exact", status="optimal", lower_bound=costs.total_cost)
    milp = len(costs.op_nodes) <= MILP_OPS_LIMIT
    try:
        most = OFFLOAD_EXACT_OPS_LIMIT if speed else EXACT_OPS_LIMIT
        if len(costs.op_nodes) > most:
            raise exact.SearchLimit(f"the graph has {len(costs.op_nodes)} ops; exact search "
                                    f"handles graphs up to about {most}"
                                    + (" with transfers" if speed else ""))
        deadline = started + (limit / 2 if milp else limit)
        space = OffloadSpace(costs, speed, budget, deadline, host) if speed else None
        steps, cost, _ = exact.search(costs, budget, max_states, deadline=deadline, space=space)
    except exact.SearchLimit as limit_reached:
        plan = _past_exact_search(costs, budget, params, (started, limit), limit_reached, milp,
                                  (speed, host), workers if cpsat else 0)
        return replace(plan, details=_unmoved(plan, speed))
    except BudgetError:
        raise _below_minimum(costs, budget_bytes, max_states, asked, host) from None
    if speed:  # ``cost`` is the least time; every plan computes each op at least once
        return GraphPlan.build(costs, steps, "optimal", params, speed, method="exact",
                               status="optimal", lower_bound=costs.total_cost,
                               solve_s=time.perf_counter() - started,
                               details={"objective": "time"})
    return GraphPlan.build(costs, steps, "optimal", params, method="exact", status="optimal",
                           lower_bound=cost, solve_s=time.perf_counter() - started)


DEFAULTS = {"budget_bytes": None, "method": "auto", "bandwidth": None,
            "host_budget_bytes": None, "workers": 1, "cpsat": True}


def _recorded(**given: object) -> dict[str, object]:
    """The params a plan records: those given other than their defaults."""
    return {name: value for name, value in given.items() if value != DEFAULTS[name]}


def _unmoved(plan: GraphPlan, bandwidth: float | None) -> dict:
    """The details of a plan past exact search: when a bandwidth was given but the plan
    holds no transfer, they say that transfers were not planned."""
    if not bandwidth or plan.transfers:
        return dict(plan.details)
    return {**plan.details, "transfers": "not planned past exact search"}


MINIMUM_SEARCH_STATES = 50_000  # naming the least budget is a courtesy: it must stay quick


def _below_minimum(costs: GraphCosts, budget_bytes: object, max_states: int,
                   bandwidth: float | None = None, host_budget: float = math.inf
                   ) -> BudgetError:
    """The error for a budget exact search proved no plan meets, naming the least budget when
    a short search finds it; under a host budget that a larger one would lift, naming the
    least host budget that works (:func:`least_host_budget`), or saying why it cannot."""
    states = min(max_states, MINIMUM_SEARCH_STATES)
    if bandwidth and host_budget < sum(costs.sizes[i] for i in costs.op_nodes):
        try:
            least = least_host_budget(costs, int(budget_bytes), bandwidth,  # type: ignore
                                      states)
            return BudgetError(f"policy 'optimal': no plan fits budget_bytes={budget_bytes} "
                               f"within host_budget_bytes={host_budget:g}; the least host "
                               f"budget that works at this budget is {least} bytes")
        except exact.SearchLimit:
            return BudgetError(f"policy 'optimal': no plan fits budget_bytes={budget_bytes} "
                               f"within host_budget_bytes={host_budget:g} (exact search "
                               f"proved it); whether a larger host budget would, a search "
                               f"of {states:,} states could not tell")
        except BudgetError:
            pass  # no host budget is enough: the device budget is too small
    try:
        least = minimum_budget(costs, states, bandwidth, host_budget)
    except exact.SearchLimit:
        return BudgetError(f"policy 'optimal': no plan of this {len(costs.op_nodes)}-op graph "
                           f"fits budget_bytes={budget_bytes} (exact search proved it); give "
                           f"a larger budget (none fits below {least_peak_floor(costs):,} bytes)")
    return BudgetError(f"policy 'optimal': budget_bytes={budget_bytes} is below the minimum "
                       f"of {least} bytes for this graph")


def least_host_budget(costs: GraphCosts, budget_bytes: int, bandwidth: float,
                      max_states: int = MINIMUM_SEARCH_STATES) -> int:
    """The least host budget (bytes) under which some plan with transfers at ``bandwidth``
    fits ``budget_bytes`` of device memory: host budgets 1, 2, 4, ... then a bisection, each
    decided by exact search of the least device peak (small host budgets decide fastest).
    Raises :class:`.exact.SearchLimit` when a search gives up, and BudgetError when no host
    budget is enough (one copy of every op value at once is the most any plan holds)."""
    def fits(host: int) -> bool:
        try:
            return minimum_budget(costs, max_states, bandwidth, host) <= budget_bytes
        except BudgetError:
            return False
    total, low, high = sum(costs.sizes[i] for i in costs.op_nodes), 0, 1
    while not fits(high):
        if high >= total:
            raise BudgetError(f"policy 'optimal': no host budget makes budget_bytes="
                              f"{budget_bytes} fit")
        low, high = high + 1, min(2 * high, total)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle + 1, high)
    return low


def _past_exact_search(costs: GraphCosts, budget: float, params: dict,
                       clock: tuple[float, float], reason: Exception, milp: bool,
                       transfer: tuple[float | None, float] = (None, math.inf),
                       workers: int = 1) -> GraphPlan:
    """Past exact search: the cheapest of the plans of ``dtr`` (its online h_DTR_eq and its
    offline ``next_use``), ``chen``, the hierarchical plan and, where ``milp``, Checkmate's
    MILP at the same budget (so never worse than any), each replayed and checked; ``method``
    names the one chosen. ``clock`` is (start, time_limit): they run fastest first, each
    within an even share of the time left (a member that finishes early leaves its time to
    the next), except that until one has found a plan a member may use half the time left (on
    a large graph, a plan within the limit comes first); one out of time is left out, and
    the plan's details name it. Then CP-SAT
    improves the cheapest in the time left (:func:`_certified`). With a ``bandwidth`` (bytes
    per cost unit) the ``dtr`` members may move values to host memory and the plan of least
    **time** is chosen (``tried`` then gives each one's time, and the bound stays every op
    once); CP-SAT, which plans cost, improves the cheapest plan without transfers, which
    competes on time too (:func:`_faster_without_transfers`), in half the time left; then
    CP-SAT with transfers (:mod:`.cpsat_offload`) improves the fastest plan so far in the
    rest. ``transfer`` is (bandwidth in bytes per cost
    unit or None, host budget in bytes). ``workers`` 0: CP-SAT is not
    run."""
    started, limit = clock
    bandwidth, host_budget = transfer
    candidates, refusals, late = [], [f"exact search could not decide ({reason})"], []
    members = _members(costs, int(budget), milp, bandwidth, host_budget)
    certify = workers > 0 and len(costs.op_nodes) <= CPSAT_OPS_LIMIT
    shares = len(members) + certify  # CP-SAT's share last
    for count, (method, planner) in enumerate(members):
        left = started + limit - time.perf_counter()
        share = left / (shares - count) if candidates else left / 2  # a first plan comes first
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
    if bandwidth:  # least time; every plan computes each op once
        best = replace(best, lower_bound=costs.total_cost, status="feasible")
        if certify:  # CP-SAT without transfers, then with them, half the time left each
            middle = time.perf_counter() + (started + limit - time.perf_counter()) / 2
            method, best = _faster_without_transfers(costs, budget, candidates, (method, best),
                                                     middle, workers, details)
            method, best = improve_with_transfers(costs, budget, (method, best), transfer,
                                                  started + limit, workers, details)
    else:
        bound = closure_bound(costs, budget, started + limit)  # valid for every plan (..floors)
        best = replace(best, lower_bound=bound,
                       status="optimal" if bound >= best.cost else "feasible")
    if certify and not bandwidth and best.status != "optimal":
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


def _faster_without_transfers(costs: GraphCosts, budget: float,
                              candidates: list[tuple[str, GraphPlan]],
                              chosen: tuple[str, GraphPlan], deadline: float, workers: int,
                              details: dict) -> tuple[str, GraphPlan]:
    """With a bandwidth: CP-SAT improves the cheapest candidate without transfers (it plans
    cost; such a plan takes its cost plus every backward step), and the faster of it and
    ``chosen`` is kept. So a bandwidth never leaves ``optimal`` slower than the plan it finds
    without one, given the same time."""
    still = [found for found in candidates if not found[1].transfers]
    if not still:
        return chosen
    method, plan = min(still, key=lambda found: (found[1].cost, found[1].peak_bytes,
                                                 PREFERENCE.index(found[0])))
    method, plan = _certified(costs, budget, plan, method, deadline, workers, details)
    if "cpsat" in details["tried"]:  # its cost, as a time
        details["tried"]["cpsat"] += plan.time - plan.cost
    plan = replace(plan, lower_bound=costs.total_cost, status="feasible")
    return min((chosen, (method, plan)), key=lambda found: (found[1].time, found[1].peak_bytes))


PREFERENCE = ("hierarchical", "dtr", "dtr:next_use", "chen", "milp", "cpsat")  # among equal plans


def _members(costs: GraphCosts, budget_bytes: int, milp: bool, bandwidth: float | None = None,
             host_budget: float = math.inf) -> list[tuple[str, Callable[[float], GraphPlan]]]:
    """The planners past exact search, fastest first: (method, planner of a time limit);
    the ``dtr`` members get ``bandwidth`` and ``host_budget`` (bytes)."""
    host = None if host_budget == math.inf else int(host_budget)
    members = [
        ("dtr", lambda seconds: plan_dtr(costs, budget_bytes=budget_bytes, time_limit=seconds,
                                         bandwidth=bandwidth, host_budget_bytes=host)),
        ("dtr:next_use", lambda seconds: plan_dtr(costs, budget_bytes=budget_bytes,
                                                  heuristic="next_use", time_limit=seconds,
                                                  bandwidth=bandwidth, host_budget_bytes=host)),
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
                   Parameter("host_budget_bytes", int, None,
                             "byte budget for host copies (with a bandwidth): the plan's host "
                             "peak stays within it; default: no limit"),
                   Parameter("workers", int, 1,
                             "CP-SAT's search threads past exact search (1: deterministic "
                             "up to the time limit)"),
                   Parameter("cpsat", bool, True,
                             "past exact search, improve and bound the portfolio's plan with "
                             "CP-SAT (false: the portfolio's plan and the closure bound)")))
