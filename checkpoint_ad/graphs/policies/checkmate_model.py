"""Checkmate's formulation (Jain et al., MLSys 2020) adapted to docs/graph_model.md, solved
with HiGHS through :func:`scipy.optimize.milp`.

Stages. With ops ``o_0 < ... < o_{n-1}`` (index order) and ``m`` backward steps, there are
``T = n + m`` stages. Forward stage ``t < n`` computes op ``o_t`` (and may recompute earlier
ops); backward stage ``n + j`` may recompute any ops, then takes backward step
``costs.backward_order[j]``. Inside a stage ops are computed in index order, each at most once.

Variables per stage t and op position p: ``R[t,p]`` (p is computed in stage t), ``S[t,p]``
(p is resident when stage t starts: a checkpoint), ``U[t,p]`` (value bytes resident right
after position p of stage t, the new value and its parents included), and ``FREE[t,e]`` per
edge ``e = (i, k)`` between ops (i is freed right after k is computed in stage t: k is its
last consumer computed in the stage, it is not kept into stage t+1 and not read by the
stage's backward step). Constraints, as in the paper: ``S[t+1,p] <= S[t,p] + R[t,p]``;
``R[t,k] <= R[t,i] + S[t,i]`` on every edge; a backward step's residuals are resident
(``R + S >= 1``); FREE exactly when no hazard remains; the memory recurrence
``U[t,k+1] = U[t,k] + sizes R[t,k+1] - sum of the FREE[t,(i,k)] sizes[i]``; and
``U + cotangent bytes <= budget`` at every position and at the backward step (its new
cotangents included). One tightening: ``R[t,p] + S[t,p] <= 1`` (never compute a resident
value), so the plan's cost is exactly the objective.

Memory is counted in units of the sizes' gcd, or of a coarser unit with sizes rounded up when
the rows would count more than :data:`MAX_UNITS` units (``Model.exact`` is then False).

Decoding keeps only R: the computations stage by stage, the backward steps in place, and
each value freed right after its last use. That frees every value no later than FREE does,
so the replayed peak never exceeds the memory the formulation counts.

Size. The model has about 3 (n + e) rows per stage for n ops and e edges between them, and a
row takes about 1,700 bytes by the time HiGHS has solved it (its terms, the sparse matrix and
HiGHS's copies; measured on chains of 100 and 150 ops): 200 MB at 100 ops, 7 GB at 500.
:func:`model_bytes` estimates it before anything is built, and a ``deadline`` stops the build.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..costs import GraphCosts
from ..plans import GraphAction, GraphStep
from .steps import free_after_last_use

MAX_UNITS = 2**20  # memory the rows count, in units: beyond it HiGHS cannot tell one unit
ROW_BYTES = 2_000  # one row, built and solved (measured: about 1,700; see the module docstring)
CHECKED_ROWS = 65_536  # rows assembled between two readings of the clock


class OutOfTime(Exception):
    """The deadline passed while the model was being built or assembled for HiGHS."""


def model_rows(ops: int, edges: int) -> int:
    """An upper estimate of the model's rows for ``ops`` ops and ``edges`` edges between
    them: at most 2 ops stages of at most 4 rows per op and per edge."""
    return 2 * ops * 4 * (ops + edges)


def model_bytes(ops: int, edges: int) -> int:
    """An upper estimate of the bytes that building and solving the model takes."""
    return ROW_BYTES * model_rows(ops, edges)


def graph_model_bytes(costs: GraphCosts) -> int:
    """:func:`model_bytes` of the graph ``costs``."""
    return model_bytes(len(costs.op_nodes), sum(len(costs.op_parents[i]) for i in costs.op_nodes))


@dataclass(frozen=True)
class Solution:
    """What HiGHS returned: status ("optimal", "time_limit", "infeasible", or its message),
    the objective (cost), its lower bound (the MILP's dual bound, or the LP's value), and R
    and S as stage-by-op matrices (0/1, or fractional for the LP); None without a point."""

    status: str
    objective: float | None
    bound: float | None
    R: np.ndarray | None
    S: np.ndarray | None


class Model:
    """The formulation of the module docstring for one graph; build rows once, solve for
    any budget (``math.inf``: no limit), integral or relaxed. Building and solving stop
    with :class:`OutOfTime` at ``deadline`` (a ``time.perf_counter()`` value)."""

    def __init__(self, costs: GraphCosts, deadline: float = math.inf) -> None:
        self.costs, self.deadline = costs, deadline
        self.ops = costs.op_nodes
        self.position = {node: p for p, node in enumerate(self.ops)}
        self.order = costs.backward_order
        n = len(self.ops)
        self.n, self.stages = n, n + len(self.order)
        self.edges = [(self.position[u], self.position[v]) for v in self.ops
                      for u in costs.op_parents[v]]
        self.cost = np.array([costs.costs[i] for i in self.ops], dtype=float)
        self.residuals = [{self.position[r] for r in costs.op_residuals[b]} for b in self.order]
        self.parents = [[i for i, k in self.edges if k == p] for p in range(n)]
        self.edges_into = [[(e, i) for e, (i, k) in enumerate(self.edges) if k == p]
                           for p in range(n)]
        self._cotangent_bytes()
        self._memory_unit()
        self.rows: list[tuple[dict[int, float], float, float]] = []
        self._build()

    # variable indices: R, S, U blocks of stages x n, then FREE of stages x edges
    def R(self, t: int, p: int) -> int:
        return t * self.n + p

    def S(self, t: int, p: int) -> int:
        return (self.stages + t) * self.n + p

    def U(self, t: int, p: int) -> int:
        return (2 * self.stages + t) * self.n + p

    def FREE(self, t: int, e: int) -> int:
        return 3 * self.stages * self.n + t * len(self.edges) + e

    @property
    def count(self) -> int:
        return self.FREE(self.stages, 0)

    def _cotangent_bytes(self) -> None:
        """Cotangent bytes alive during each stage's computations (``during``) and at its
        backward step (``at_step``: plus the seed and the new cotangents)."""
        costs, sizes = self.costs, self.costs.sizes
        self.during = [0] * self.stages
        self.at_step = [0] * self.stages
        live: set[int] = set()
        for j, b in enumerate(self.order):
            t = self.n + j
            self.during[t] = sum(sizes[p] for p in live)
            seed = sizes[b] if b == costs.output else 0
            self.at_step[t] = self.during[t] + seed + sum(sizes[p] for p in costs.new_cotangents[b])
            live.discard(b)
            live.update(costs.new_cotangents[b])

    def _memory_unit(self) -> None:
        """Bytes per unit of the memory rows: the sizes' gcd (``exact``), or, when memory in
        such units could reach :data:`MAX_UNITS`, a coarser unit with every size rounded up
        (HiGHS's tolerances are relative: a row counting 10**12 bytes cannot tell one byte,
        and its answers, optimal or infeasible, are then wrong). Rounding sizes up and budgets
        down keeps every plan found within the budget, but it may miss plans that fit
        exactly: ``exact`` is False, and nothing found is called optimal."""
        sizes = [self.costs.sizes[i] for i in self.ops]
        everything = sum(sizes) + max(self.at_step, default=0)
        self.unit = math.gcd(*sizes) or 1
        self.exact = everything <= MAX_UNITS * self.unit
        if not self.exact:
            self.unit = -(-everything // MAX_UNITS)
        self.size = np.array([-(-size // self.unit) for size in sizes], dtype=float)
        self.ceiling = float(self.size.sum())  # no row counts more units of values

    def _units(self, budget: float, reserved: int) -> float:
        """Whole units of ``budget`` bytes left beside ``reserved`` bytes (rounded down),
        at most :attr:`ceiling` (a larger budget binds nothing); ``inf`` without a budget."""
        if not math.isfinite(budget):
            return np.inf
        return min(math.floor(budget - reserved) // self.unit, self.ceiling)

    def _row(self, terms: dict[int, float], low: float, high: float) -> None:
        self.rows.append((terms, low, high))

    def _build(self) -> None:
        consumers = [[k for i, k in self.edges if i == p] for p in range(self.n)]
        for t in range(self.stages):
            self._check_clock()
            last = t == self.stages - 1
            for p in range(self.n):
                self._row({self.R(t, p): 1, self.S(t, p): 1}, -np.inf, 1)
                if not last:
                    self._row({self.S(t + 1, p): 1, self.S(t, p): -1, self.R(t, p): -1}, -np.inf, 0)
            for i, k in self.edges:
                self._row({self.R(t, k): 1, self.R(t, i): -1, self.S(t, i): -1}, -np.inf, 0)
            if t >= self.n:
                for r in self.residuals[t - self.n]:
                    self._row({self.R(t, r): 1, self.S(t, r): 1}, 1, np.inf)
            for e, (i, k) in enumerate(self.edges):
                if self._read_by_step(t, i):
                    continue  # FREE fixed to 0 by its bounds
                later = [j for j in consumers[i] if j > k]
                # hazards h = 1 - R[t,k] + S[t+1,i] + sum R[t,j>k]; FREE = 1 iff h = 0
                terms = {self.R(t, k): -1.0, **{self.R(t, j): 1.0 for j in later}}
                if not last:
                    terms[self.S(t + 1, i)] = 1.0
                most = 1 + (not last) + len(later)
                self._row({**terms, self.FREE(t, e): 1.0}, 0, np.inf)   # h >= 1 - FREE
                self._row({**terms, self.FREE(t, e): float(most)}, -np.inf, most - 1)
            self._memory_rows(t)

    def _check_clock(self) -> None:
        if time.perf_counter() > self.deadline:
            raise OutOfTime

    def _read_by_step(self, t: int, p: int) -> bool:
        return t >= self.n and p in self.residuals[t - self.n]

    def _freed_after(self, t: int, k: int) -> dict[int, float]:
        return {self.FREE(t, e): -self.size[i] for e, i in self.edges_into[k]}

    def _memory_rows(self, t: int) -> None:
        start = {self.S(t, p): -self.size[p] for p in range(self.n)}
        start[self.R(t, 0)] = -self.size[0]
        self._row({self.U(t, 0): 1, **start}, 0, 0)
        for k in range(self.n - 1):
            terms = {self.U(t, k + 1): 1, self.U(t, k): -1, self.R(t, k + 1): -self.size[k + 1]}
            for var, coefficient in self._freed_after(t, k).items():
                terms[var] = -coefficient
            self._row(terms, 0, 0)

    def solve(self, budget: float, integral: bool) -> Solution:
        """Minimise the cost under ``budget`` bytes (math.inf: no limit) until the deadline."""
        low, high = self._bounds(budget)
        rows = self.rows + self._step_rows(budget)
        result = self._highs(self.cost_vector(), rows, low, high, integral)
        return self._solution(result, integral)

    def cost_vector(self) -> np.ndarray:
        c = np.zeros(self.count)
        for t in range(self.stages):
            c[self.R(t, 0):self.R(t, 0) + self.n] = self.cost
        return c

    def _step_rows(self, budget: float) -> list:
        """The memory at each backward step: values resident then + cotangent bytes."""
        rows = []
        for t in range(self.n, self.stages):
            terms = {self.U(t, self.n - 1): 1.0, **self._freed_after(t, self.n - 1)}
            rows.append((terms, -np.inf, self._units(budget, self.at_step[t])))
        return rows

    def _bounds(self, budget: float) -> tuple[np.ndarray, np.ndarray]:
        low, high = np.zeros(self.count), np.ones(self.count)
        for t in range(self.stages):
            high[self.U(t, 0):self.U(t, 0) + self.n] = self._units(budget, self.during[t])
            if t < self.n:  # forward stage t computes op t; nothing later exists yet
                low[self.R(t, t)] = 1
                high[self.R(t, t + 1):self.R(t, 0) + self.n] = 0
                high[self.S(t, t):self.S(t, 0) + self.n] = 0
            for e, (i, _) in enumerate(self.edges):
                if self._read_by_step(t, i):
                    high[self.FREE(t, e)] = 0
        return low, high

    def least_peak(self) -> tuple[int | None, bool]:
        """The least peak (bytes) of this formulation's plans, by a MILP minimising a peak
        variable P over the same rows until the deadline; (None, False) when HiGHS finds no
        point in time, and whether the value is proven least."""
        peak = self.count  # one more column: P, in units of ``unit``
        rows = list(self.rows)
        for t in range(self.stages):
            for k in range(self.n):
                rows.append(({self.U(t, k): 1.0, peak: -1.0}, -np.inf, -self.during[t] / self.unit))
        for (terms, _, _), t in zip(self._step_rows(math.inf), range(self.n, self.stages)):
            rows.append(({**terms, peak: -1.0}, -np.inf, -self.at_step[t] / self.unit))
        low, high = self._bounds(math.inf)
        c = np.zeros(self.count + 1)
        c[peak] = 1
        result = self._highs(c, rows, np.append(low, 0), np.append(high, np.inf), True)
        if result is None or result.x is None:
            return None, False
        return math.ceil(result.fun - 1e-6) * self.unit, result.status == 0

    def _highs(self, c, rows, low, high, integral: bool):
        """HiGHS's result on these rows (None when the bounds alone are contradictory), in
        what is left before the deadline once the matrix is assembled."""
        if np.any(low > high):  # a budget below the cotangent bytes alone
            return None
        from scipy.optimize import Bounds, LinearConstraint, milp  # imported when used
        from scipy.sparse import coo_array
        data, row_index, col_index = [], [], []
        for r, (terms, _, _) in enumerate(rows):
            if r % CHECKED_ROWS == 0:
                self._check_clock()
            for var, coefficient in terms.items():
                row_index.append(r); col_index.append(var); data.append(coefficient)
        matrix = coo_array((data, (row_index, col_index)), shape=(len(rows), len(c))).tocsr()
        constraint = LinearConstraint(matrix, [r[1] for r in rows], [r[2] for r in rows])
        integrality = np.zeros(len(c))
        if integral:
            integrality[:self.U(0, 0)] = 1
            integrality[self.FREE(0, 0):self.count] = 1
        left = self.deadline - time.perf_counter()
        if left <= 0:
            raise OutOfTime
        return milp(c, constraints=constraint, integrality=integrality, bounds=Bounds(low, high),
                    options={"time_limit": left, "disp": False})

    def _solution(self, result, integral: bool) -> Solution:
        if result is None or result.status == 2:
            return Solution("infeasible", None, None, None, None)
        status = {0: "optimal", 1: "time_limit"}.get(result.status, result.message)
        bound = getattr(result, "mip_dual_bound", None) if integral else result.fun
        bound = float(bound) if bound is not None and math.isfinite(bound) else None
        if result.x is None:
            return Solution(status, None, bound, None, None)
        block = result.x[:self.U(0, 0)].reshape(2, self.stages, self.n)
        return Solution(status, float(result.fun), bound, block[0], block[1])

    def decode(self, R: np.ndarray) -> list[GraphStep]:
        """The plan of a 0/1 R: each stage's computations in index order, then its backward
        step; every value freed right after its last use."""
        steps = []
        for t in range(self.stages):
            steps += [GraphStep(GraphAction.COMPUTE, self.ops[p]) for p in range(self.n)
                      if R[t, p] > 0.5]
            if t >= self.n:
                steps.append(GraphStep(GraphAction.BACKWARD, self.order[t - self.n]))
        return free_after_last_use(self.costs, steps)

    def recompute_for(self, S: np.ndarray) -> np.ndarray:
        """The least R for a 0/1 checkpoint matrix S (the paper's second rounding phase):
        what each stage must compute so its op, its backward step's residuals and the next
        stage's checkpoints exist, closed under parents that are not checkpoints."""
        R = np.zeros_like(S)
        for t in range(self.stages):
            if t < self.n:
                R[t, t] = 1
            else:
                for r in self.residuals[t - self.n]:
                    R[t, r] = max(R[t, r], 1 - S[t, r])
            if t + 1 < self.stages:
                R[t] = np.maximum(R[t], S[t + 1] * (1 - S[t]))
            for k in reversed(range(self.n)):
                if R[t, k]:
                    for i in self.parents[k]:
                        if not S[t, i]:
                            R[t, i] = 1
        return R
