"""optimal: the plan of least forward cost under a memory budget, by dynamic programming.

This is Beaumont et al., "Optimal checkpointing for heterogeneous chains" (the rotor family), in
the tape model of docs/cost_model.md, section "Least cost with held tapes". Stage t costs u_t =
``costs.compute[t-1]`` per evaluation; checkpoint x_j takes a_j of memory; a held tape of stage t
takes b_t (it holds x_t, so it is also a restart point); memory is bytes, or slots. The plan
minimises the forward cost, the sum of u_t over all evaluations, while the stored checkpoints plus
held tapes (x_0 included) never exceed the budget M. With U(i, k) = u_{i+1} + ... + u_k:

    C(i, j, m, f)    least cost to reverse stages i+1..j when x_i can be restored, m is free
                     (a level: see Budgets), and f = 1 if this call holds x_i's last use (it
                     frees x_i; never x_0)
    D(k, j, m)       the same when x_k is only the working value
    C(i, i+1, m, f) = D(i, i+1, m) = u_{i+1}                                     (turn)
    C(i, j, m, f)   = min( u_{i+1} + C(i+1, j, m', 0)                    if m' ≥ 0
                                                                                 (hold a tape)
                           min over i<k<j of U(i, k) + D(k, j, m) + C(i, k, m, f) ) (advance)
    D(k, j, m)      = min( C(k, j, m − a_k, 1)                  if a_k ≤ m      (store x_k)
                           u_{k+1} + C(k+1, j, m − b_{k+1}, 0)  if b_{k+1} ≤ m  (hold a tape) )
    optimum         = C(0, n, M − a_0, 0)
    m'              = m + f·a_i − b_{i+1} + (1 − f)·c_{i+1}

where c_t = ``costs.tape_input_bytes[t-1]`` is the part of b_t that is the tape's input x_{t-1}
(docs/cost_model.md states the recursion with c = 0). A tape that keeps its input shares that
memory with the stored x_i, so holding it while x_i stays stored (f = 0) costs only b − c; with
f = 1 x_i's checkpoint is released but the tape keeps its memory, which m + a_i − b already says.

**Steps.** A turn: RESTORE i (when the working value is not x_i), TURN i+1, FREE i if f = 1.
Holding a tape: RESTORE i, FREE i if f = 1 (first, so that its memory serves the tape), TAPE i+1,
the reversal of i+2..j from x_{i+1}, BACKWARD i+1. Advancing: RESTORE i, ADVANCE i+1..k, then
D(k, j, m), then C(i, k, m, f). D stores with SAVE k, then C(k, j, m − a_k, 1), or holds with
TAPE k+1, the reversal of k+2..j, BACKWARD k+1; on a tie it holds (no SAVE freed at once).

**Budgets.** With ``slots`` every state and every held tape takes one slot (a = b = 1,
M = slots) and the plan promises ``slots`` to the checker. With ``budget_bytes`` the sizes are
``costs.state_bytes`` and ``costs.tape_bytes``, exact, and the free memory m is a *level*: the
tables are solved for a grid of free byte amounts (:class:`.optimal_dp.Grid`), and every move
(storing x_k, holding a tape, releasing x_i) lands on the highest level not above the bytes
really left, so the bytes really stored never exceed the budget. The default grid is
*geometric*: ``resolution`` levels (default :func:`default_resolution`: 1000, 71 at n = 500)
from 0 up to E, the bytes that keep everything besides x_0 (:func:`everything_bytes`), the
first gap a sixteenth of the median state or tape size and each next gap a constant ratio
larger. Every budget, small or large, thus gets the same relative resolution from one table,
with levels that do not depend on the budget; a budget with room for everything gets the plan
that keeps everything, whatever the levels. ``tapes=False`` forbids held tapes (b = ∞): that is
revolve's model, and with unit costs the optimum is T_G(n, s) + n.

**One table, many budgets.** The tables are filled for every level up to a maximum, and a
level's answer does not depend on the maximum (nothing reachable from a level reads a higher
one), so :class:`OptimalTable` answers each budget up to its maximum exactly as that budget
solved alone on the same levels. The policy keeps the last tables (:data:`CACHE_TABLES`,
:data:`CACHE_BYTES`; :func:`clear_cache` releases them), keyed by the chain's costs, tapes and
resolution (bytes) or nothing (slots): a sweep of byte budgets solves once per chain, and an
ascending one over slots, whose table doubles, a few times. Before filling, the tables' bytes
and operations are estimated and refused above the planner limits (:mod:`..limits`).

**Scope.** The recursion keeps each checkpoint x_j until it is dead (stage j+1 reversed, or its
tape held): it is optimal among such *persistent* schedules. With unit sizes, exhaustive search
found no schedule that beats it; with unequal sizes, freeing a small checkpoint that is still
needed, to make room for a larger one, is occasionally a little cheaper (tests/chains/test_optimal.py
pins a 6-stage example: 61 against 63).

"""
from __future__ import annotations

import math
import numbers

from ...checks import whole_number
from ...errors import BudgetError, PolicyError
from ..costs import ChainCosts
from ..plans import Plan
from ..replay import forward_cost, peak_bytes
from ...plans.registry import Parameter, PolicySpec, positive_int
from ...plans.limits import Footprint, plan_bytes
from . import optimal_budget
from .optimal_dp import everything_bytes
from .optimal_offload import plan_with_transfers
from ...plans.transfers import bandwidth_value
from .optimal_table import (NAME, OptimalTable, _cached, _check_tapes, _everything_plan,
                            _free_slots, _slots_table, default_resolution, table_footprint)

# -- what a table takes ------------------------------------------------------------------------

def footprint(n: int, slots: object = None, budget_bytes: object = None, tapes: object = True,
              resolution: object = None, store_budget_bytes: object = None,
              bandwidth: object = None) -> Footprint:
    """What planning an n-stage chain of unit stages takes (:mod:`..limits`): no table when the
    budget keeps everything (n slots or stored bytes; the whole peak adds at most the working
    value, a new one, and two cotangents)."""
    tapes = tapes is not False
    if (isinstance(slots, int) and slots >= n
            or isinstance(store_budget_bytes, numbers.Real) and store_budget_bytes >= n
            or isinstance(budget_bytes, numbers.Real) and budget_bytes >= n + 4):
        return Footprint(plan_bytes(n, 3 * n, n), 3 * n)  # keeps everything, no table
    if isinstance(slots, int):
        return table_footprint(n, min(max(slots - 1, 0), n - 1), tapes)
    units = resolution if isinstance(resolution, int) and resolution > 0 else None
    return table_footprint(n, units or default_resolution(n), tapes)



def _byte_budget(name: str, value: object) -> None:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value)):
        raise PolicyError(f"policy {NAME!r}: {name} must be a finite number, got {value!r}")


def check_optimal(slots: object = None, budget_bytes: object = None, tapes: object = True,
                  resolution: object = None, store_budget_bytes: object = None,
                  bandwidth: object = None) -> None:
    """Refuse parameters that are wrong, or meaningless together, before any costs are known."""
    rate = bandwidth_value(bandwidth, f"policy {NAME!r}", PolicyError)
    if rate is not None and (slots is not None or tapes is False):
        raise PolicyError(f"policy {NAME!r}: bandwidth plans transfers under budget_bytes or "
                          f"store_budget_bytes, with held tapes (got slots={slots!r}, "
                          f"tapes={tapes!r})")
    given = [name for name, value in (("slots", slots), ("budget_bytes", budget_bytes),
                                      ("store_budget_bytes", store_budget_bytes))
             if value is not None]
    if len(given) != 1:
        raise PolicyError(f"policy {NAME!r} needs exactly one budget: slots (items, x_0's "
                          f"included), budget_bytes (the whole activation peak) or "
                          f"store_budget_bytes (checkpoints and held tapes), got slots={slots!r}, "
                          f"budget_bytes={budget_bytes!r}, "
                          f"store_budget_bytes={store_budget_bytes!r}")
    _check_tapes(tapes)
    if slots is not None:
        whole_number(slots, f"policy {NAME!r}: slots", minimum=None, error=PolicyError)
        if slots < 1:
            raise BudgetError(f"policy {NAME!r}: slots={slots} is below the minimum of 1 slot "
                              f"(x_0 alone, recomputing everything)")
        if resolution is not None:
            raise PolicyError(f"policy {NAME!r}: resolution applies to budget_bytes only (with "
                              f"slots every state and held tape is one unit), got "
                              f"resolution={resolution!r}")
        return
    _byte_budget(given[0], budget_bytes if store_budget_bytes is None else store_budget_bytes)
    if resolution is not None:
        positive_int(NAME, "resolution", resolution)


def table_for(costs: ChainCosts, slots: object = None, budget_bytes: object = None,
              tapes: object = True, resolution: object = None,
              store_budget_bytes: object = None) -> OptimalTable:
    """The (kept) table that answers this budget: validates the parameters, then solves once
    per chain, tapes and resolution (slots: once per chain and tapes, growing as
    needed)."""
    check_optimal(slots, budget_bytes, tapes, resolution, store_budget_bytes)
    tapes = _check_tapes(tapes)
    if slots is not None:
        return _slots_table(costs, _free_slots(slots), tapes)
    levels = (default_resolution(costs.n) if resolution is None
              else positive_int(NAME, "resolution", resolution))
    return _cached((costs, tapes, levels), lambda table: True,
                   lambda width: OptimalTable.solve(costs, resolution=levels, tapes=tapes))


def _keeps_everything(costs: ChainCosts, slots: object, budget_bytes: object, tapes: bool,
                      store_budget_bytes: object) -> bool:
    """Whether a (checked) budget holds the plan that keeps everything, so that no table is
    needed: it is the cheapest plan of all."""
    if slots is not None:
        return slots - 1 >= costs.n - 1
    if store_budget_bytes is not None:
        return store_budget_bytes - costs.state_bytes[0] >= everything_bytes(costs, tapes)
    return budget_bytes >= peak_bytes(_everything_plan(costs, tapes).build(NAME), costs)


def optimal_cost(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int | None = None,
                 store_budget_bytes: float | None = None) -> float:
    """The DP's least forward cost (sum of u_t over evaluations) for the given budget."""
    return forward_cost(plan_optimal(costs, slots, budget_bytes, tapes, resolution,
                                     store_budget_bytes), costs)


def plan_optimal(costs: ChainCosts, slots: int | None = None, budget_bytes: float | None = None,
                 tapes: bool = True, resolution: int | None = None,
                 store_budget_bytes: float | None = None, bandwidth: float | None = None) -> Plan:
    """The plan of least forward cost within the budget (see the module docstring); with a
    ``bandwidth`` > 0, the plan of least time (docs/chain_offload.md)."""
    check_optimal(slots, budget_bytes, tapes, resolution, store_budget_bytes, bandwidth)
    rate = bandwidth_value(bandwidth, f"policy {NAME!r}", PolicyError)
    if rate is not None:
        params = {"budget_bytes" if store_budget_bytes is None else "store_budget_bytes":
                  budget_bytes if store_budget_bytes is None else store_budget_bytes,
                  "tapes": tapes, "bandwidth": bandwidth}
        if resolution is not None:
            params["resolution"] = resolution
        return plan_with_transfers(
            costs, rate, params, budget_bytes, store_budget_bytes,
            lambda: plan_optimal(costs, None, budget_bytes, tapes, resolution,
                                 store_budget_bytes),
            lambda: minimum_budget(costs, tapes, resolution))
    if _keeps_everything(costs, slots, budget_bytes, tapes, store_budget_bytes):
        builder = _everything_plan(costs, tapes)
        if slots is not None:
            return builder.build(NAME, {"slots": slots, "tapes": tapes}, slots=slots)
        levels = default_resolution(costs.n) if resolution is None else resolution
        kind = "budget_bytes" if store_budget_bytes is None else "store_budget_bytes"
        return builder.build(NAME, {kind: budget_bytes if store_budget_bytes is None
                                    else store_budget_bytes, "tapes": tapes,
                                    "resolution": levels})
    table = table_for(costs, slots, budget_bytes, tapes, resolution, store_budget_bytes)
    if budget_bytes is not None:
        return optimal_budget.plan_within(table, budget_bytes, {
            "budget_bytes": budget_bytes, "tapes": tapes, "resolution": table.resolution})
    return table.plan(store_budget_bytes if slots is None else slots)


def minimum_budget(costs: ChainCosts, tapes: bool = True, resolution: int | None = None) -> int:
    """The least ``budget_bytes`` (bytes, the whole activation peak) ``optimal`` plans within
    on the chain of ``costs``."""
    return optimal_budget.minimum_budget(table_for(costs, budget_bytes=0, tapes=tapes,
                                                   resolution=resolution))


SPEC = PolicySpec(
    NAME, "least forward cost within a memory budget (dynamic programming, held tapes allowed)",
    plan_optimal,
    (Parameter("slots", int, None,
               "budget in items, x_0's included; every state and held tape takes one slot "
               "(give one budget: this, budget_bytes or store_budget_bytes)"),
     Parameter("budget_bytes", float, None,
               "budget in bytes for the whole activation peak the run holds: checkpoints, held "
               "tapes, the working value, a turn's tape and the cotangents, x_0's copy included "
               "(parameters apart)"),
     Parameter("tapes", bool, True,
               "allow held tapes; False is revolve's model (checkpoints and turns only)"),
     Parameter("resolution", int, None,
               "byte budgets only: how many free memory levels the DP solves, from nothing to "
               "the bytes that keep everything, spaced geometrically (each gap a constant ratio "
               "larger than the one before) so that every budget gets the same relative "
               "resolution from one table; the bytes left after every move are rounded down "
               "to a level, never up; more levels take time and memory in proportion (default: "
               "1000, fewer for chains over 35 stages, see default_resolution)"),
     Parameter("store_budget_bytes", float, None,
               "budget in bytes for checkpoints and held tapes alone, x_0 included, sized by "
               "costs.state_bytes and costs.tape_bytes (the recursion's own memory; the "
               "working value and cotangents come on top)"),
     Parameter("bandwidth", float, None,
               "bytes per cost unit between device and host memory: with a bandwidth > 0 the "
               "plan of least time, keeping, recomputing or moving to the host each block of "
               "the forward sweep (docs/chain_offload.md); None or 0: no transfer")),
    check_optimal)
