"""The hierarchical ``optimal``: a graph as a sequence of blocks (:mod:`.block_options`), each
with several options, planned by the rotor dynamic program generalised to per-block options
(as Rockmate does), and expanded into an ordinary graph plan.

``cost[v, s, e, m]`` is the least cost of running the backward steps of blocks s+1..e when the
exit c_s of block s is resident, the cotangent of c_e is live (none for the last block), and m
memory units are free beyond that. It ends with c_s's cotangent live and nothing of blocks
s+1..e resident. Variant ``KEEP``: the caller holds c_s and keeps it; variant ``RELEASE``: c_s
is counted in m and freed (it ends not resident). Two ways to start:

* **tape** block s+1 with option k: its forward (peak ``forward_peak``; under RELEASE, when
  the option's backward does not read c_s, ``forward_free_peak`` and c_s freed at once), then
  cost[., s+1, e] with its ``held`` bytes resident (KEEP when its backward reads its exit,
  else RELEASE), then its backward (peak ``backward_peak``, c_e's cotangent replaced by
  c_{s+1}'s);
* **checkpoint** c_j (s < j < e): advance blocks s+1..j keeping only the working exit, then
  cost[RELEASE, j, e], then cost[v, s, j].

Memory is counted in units of ``unit`` bytes: the greatest common divisor of every size the
program meets and the budget (exact), or coarser when the table would be too large, with
requirements rounded up and what is released rounded down, so a plan the table accepts always
fits the budget. The plan is replayed (:meth:`GraphPlan.build`); ``lower_bound`` is the
trivial bound (every op computed once).
"""
from __future__ import annotations

import math
import time
from functools import reduce

import numpy as np

from ...errors import BudgetError, TimeLimitError
from ..costs import GraphCosts
from ..floors import least_peak_floor
from ..plans import GraphAction, GraphPlan, GraphStep
from .block_options import Block, graph_blocks
from .block_plans import EXACT_BLOCK_OPS
from .fixed import plan_store_all

MAX_BLOCKS = 100  # more cut blocks are merged into this many
MAX_UNITS = 600  # memory units of the table at most
MAX_CELLS = 8_000_000  # 2 (blocks + 1)² (units + 1) at most: 64 MB of float64 costs
KEEP, RELEASE = 0, 1


class _Table:
    """The dynamic program over ``blocks`` within ``budget`` bytes (module docstring)."""

    def __init__(self, blocks: list[Block], budget: int, clock: _Clock) -> None:
        self.blocks, costs, self.clock = blocks, blocks[0].costs, clock
        n = self.n = len(blocks)
        exits = [0] + [costs.sizes[b.exit] for b in blocks]
        grads = [0] + [costs.sizes[b.exit] if costs.has_cotangent[b.exit] and not b.last else 0
                       for b in blocks]
        advance = [(b.advance_peak(False), b.advance_peak(True)) for b in blocks]
        measured = exits + grads + [x for pair in advance for x in pair] + [
            int(x) for b in blocks for o in clock.options(b) for x in o.measures()[:-2]]
        most = max(1, min(MAX_UNITS, MAX_CELLS // (2 * (n + 1) ** 2) - 1))
        self.unit = memory_unit(measured, [costs.sizes[i] for i in costs.op_nodes], budget, most)
        self.units = budget // self.unit
        up = self._up
        self.exit = np.array([up(x) for x in exits])
        self.grad_up = np.array([up(x) for x in grads])
        self.grad_down = np.array([x // self.unit for x in grads])
        self.prefix = np.concatenate([[0.0], np.cumsum([b.cost for b in blocks])])
        self.reach = np.zeros((n + 1, n + 1), dtype=np.int64)  # peak advancing s+1..j
        for s in range(n):
            peak = up(advance[s][0])
            for j in range(s + 1, n + 1):
                if j > s + 1:
                    peak = max(peak, up(advance[j - 1][1]))
                self.reach[s, j] = peak
        self.options = [[tuple(up(int(x)) for x in o.measures()[:-2]) + o.measures()[-2:] +
                         o.kind() for o in b.options] for b in blocks]
        self.memory = np.arange(self.units + 1)
        self.cost = np.full((2, n + 1, n + 1, self.units + 1), np.inf)
        self._fill()

    def _fill(self) -> None:
        """Fill ``cost`` by ranges of blocks, shortest first."""
        n = self.n
        for e in range(n + 1):
            self.cost[KEEP, e, e] = 0.0
            self.cost[RELEASE, e, e, self.exit[e]:] = 0.0
        for e in range(1, n + 1):
            self.clock.check()
            for s in range(e - 1, -1, -1):
                for variant in (KEEP, RELEASE):
                    self.cost[variant, s, e] = np.min(self._candidates(variant, s, e)[0], axis=0)

    def _up(self, size: int) -> int:
        return -(-size // self.unit)

    def _candidates(self, variant: int, s: int, e: int
                    ) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """Every way to start cost[variant, s, e]: a row of costs over memory per choice."""
        m, rows, choices = self.memory, [], []
        gain, entry = self.grad_down[e], self.exit[s] if variant == RELEASE else 0
        for k, option in enumerate(self.options[s]):
            (forward_peak, forward_free_peak, held, backward_peak, backward_rest_peak,
             turn_peak, turn_release_peak, cost, turn_cost, reads_entry, needs_exit) = option
            if e == s + 1:  # a turn
                peak = turn_release_peak if variant == RELEASE else turn_peak
                row = np.where(m + gain >= peak, turn_cost, np.inf)
                rows.append(row)
                choices.append(("turn", k))
                continue
            frees_entry = variant == RELEASE and not reads_entry
            base = m if frees_entry else m - entry
            after = base - (held if needs_exit else held - self.exit[s + 1])
            row = cost + self.cost[KEEP if needs_exit else RELEASE, s + 1, e,
                                   np.clip(after, 0, self.units)]
            fits = (m >= forward_free_peak) if frees_entry else (base >= forward_peak)
            back = backward_peak if needs_exit else backward_rest_peak
            row[(after < 0) | ~fits | (base + gain < back)] = np.inf
            rows.append(row)
            choices.append(("tape", k))
        if e - s >= 2:
            js = np.arange(s + 1, e)
            base = m - entry
            before = np.minimum(m[None, :] + gain - self.grad_up[js][:, None], self.units)
            table = (self.prefix[js] - self.prefix[s])[:, None] + \
                self.cost[RELEASE, js[:, None], e, np.maximum(base, 0)[None, :]] + \
                self.cost[variant, s, js[:, None], np.maximum(before, 0)]
            table[(base[None, :] < self.reach[s, js][:, None]) | (before < 0)] = np.inf
            rows.extend(table)
            choices += [("checkpoint", int(j)) for j in js]
        return np.array(rows), choices

    def steps(self, variant: int, s: int, e: int, m: int) -> list[GraphStep]:
        """The plan of cost[variant, s, e, m], following the table's choices."""
        release = [GraphStep(GraphAction.FREE, self.blocks[s - 1].exit)] if (
            variant == RELEASE and s > 0) else []
        if s == e:
            return release
        rows, choices = self._candidates(variant, s, e)
        kind, which = choices[int(np.argmin(rows[:, m]))]
        entry, gain = int(self.exit[s]) if variant == RELEASE else 0, int(self.grad_down[e])
        if kind == "turn":
            option = self.blocks[s].options[which]
            return list(option.turn_release if variant == RELEASE else option.turn)
        if kind == "tape":
            option = self.blocks[s].options[which]
            frees_entry = variant == RELEASE and not option.reads_entry
            base = m if frees_entry else m - entry
            held = self.options[s][which][2]
            if option.needs_exit:
                inner = self.steps(KEEP, s + 1, e, base - held)
            else:
                inner = self.steps(RELEASE, s + 1, e, base - held + int(self.exit[s + 1]))
            return (list(option.forward_free if frees_entry else option.forward) + inner +
                    list(option.backward_rest) + ([] if frees_entry else release))
        j = which
        forward = [step for t in range(s, j) for step in self.blocks[t].advance(t > s)]
        return (forward + self.steps(RELEASE, j, e, m - entry) +
                self.steps(variant, s, j, min(m + gain - int(self.grad_up[j]), self.units)))


class _Clock:
    """The time limit of one hierarchical planning (seconds; None: none), read between
    blocks and between columns of the table."""

    def __init__(self, seconds: float | None, policy: str, blocks: int) -> None:
        self.seconds, self.policy, self.blocks = seconds, policy, blocks
        self.deadline = math.inf if seconds is None else time.perf_counter() + seconds

    def check(self) -> None:
        if time.perf_counter() > self.deadline:
            raise TimeLimitError(f"policy {self.policy!r}: time_limit={self.seconds:.3g} s ran "
                                 f"out while planning hierarchically ({self.blocks} blocks); "
                                 "raise time_limit")

    def options(self, block: Block) -> tuple:
        """The block's options, or this clock's refusal when time runs out finding them."""
        self.check()
        try:
            return block.options
        except TimeLimitError:
            self.check()
            raise


def memory_unit(measured: list[int], sizes: list[int], budget: int, most: int) -> int:
    """The bytes of one memory unit: the greatest common divisor of ``measured`` and
    ``budget`` when the budget is then at most ``most`` units; else the smallest divisor of
    the greatest common divisor of the sizes of at least one unit that keeps the budget within
    ``most`` units (a multiple of it if none does), so that most sizes stay exact."""
    exact = reduce(math.gcd, measured, budget) or 1
    need = math.ceil(budget / most)
    if exact >= need:
        return exact
    common = reduce(math.gcd, [size for size in sizes if size >= need], 0)
    if common < need:
        return math.ceil(need / common) * common if common else need
    return min(d for d in range(need, common + 1) if common % d == 0)


def _feasible_table(costs: GraphCosts, budget: int, clock: _Clock) -> _Table | None:
    """The table of the finest blocks that has a plan within ``budget`` bytes, or None.

    Blocks are merged (half as many each time) while the merged blocks stay within exact
    search's reach: a block's backward that reads its entry keeps the entry resident, so a
    plan that frees a block's entry and recomputes it later (often the only saving a budget
    just below store_all's peak allows) exists only in a block holding both. One block of
    the whole graph has exact search's plan at its least peak among its options."""
    most = MAX_BLOCKS
    while True:
        blocks = graph_blocks(costs, most, clock.deadline)
        clock.blocks = clock.blocks or len(blocks)
        table = _Table(blocks, budget, clock)
        if math.isfinite(table.cost[KEEP, 0, table.n, table.units]):
            return table
        most = min(most, len(blocks)) // 2
        if most < 1 or math.ceil(len(costs.op_nodes) / most) > EXACT_BLOCK_OPS:
            return None


def plan_hierarchical(costs: GraphCosts, budget: float, policy: str = "optimal",
                      params: dict | None = None, time_limit: float | None = None
                      ) -> GraphPlan:
    """The least-cost plan of the hierarchical family (module docstring) whose peak fits
    ``budget`` bytes; BudgetError if none does, TimeLimitError after ``time_limit`` seconds
    (None: no limit)."""
    clock = _Clock(time_limit, policy, 0)
    table = _feasible_table(costs, int(min(budget, plan_store_all(costs).peak_bytes)), clock)
    if table is None:
        raise BudgetError(f"policy {policy!r}: budget_bytes={int(budget)} is below what the "
                          f"hierarchical plan can reach on this graph ({clock.blocks} blocks; "
                          f"no plan fits below {least_peak_floor(costs):,} bytes)")
    steps = table.steps(KEEP, 0, table.n, table.units)
    return GraphPlan.build(costs, steps, policy, params or {}, method="hierarchical",
                           status="feasible", lower_bound=costs.total_cost,
                           details={"blocks": table.n, "memory_unit_bytes": table.unit})
