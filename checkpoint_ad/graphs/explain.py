"""Why each value was kept: a per-value account of a graph plan (the per-value answer that a
policy given as a predicate cannot show before anything runs)."""
from __future__ import annotations

from dataclasses import dataclass

from .costs import GraphCosts, graph_costs
from .plans import GraphPlan, replay


@dataclass(frozen=True)
class ValueAccount:
    """One op value under a plan: its op and bytes, how many times it was computed, how many
    plan steps it stayed resident in all, and which backward steps read it (as a residual)."""

    node: int
    op: str | None
    nbytes: int
    computed: int
    resident_steps: int
    read_by: tuple[int, ...]

    @property
    def verdict(self) -> str:
        if self.computed > 1:
            return "recomputed"
        if self.read_by:
            return "kept for backward"
        return "freed after use"


@dataclass(frozen=True)
class Explanation:
    """The accounts of every op value of a plan; prints as a table."""

    plan: GraphPlan
    values: tuple[ValueAccount, ...]

    def __str__(self) -> str:
        head = f"{'value':>6}  {'op':<14}{'bytes':>10}{'computed':>10}{'resident':>10}  read by"
        lines = [f"why each value was kept: {self.plan.label()}", head]
        for v in self.values:
            readers = ", ".join(f"backward v{b}" for b in v.read_by) or "-"
            lines.append(f"{'v' + str(v.node):>6}  {str(v.op):<14}{v.nbytes:>10}{v.computed:>10}"
                         f"{v.resident_steps:>10}  {readers}  ({v.verdict})")
        return "\n".join(lines)


def explain(costs: GraphCosts, plan: GraphPlan) -> Explanation:
    """The per-value account of ``plan`` on ``costs`` (replayed, so checked too)."""
    counted = replay(graph_costs(costs, "explain"), plan.steps)
    readers: dict[int, list[int]] = {i: [] for i in costs.op_nodes}
    for b in costs.backward_order:
        for r in costs.op_residuals[b]:
            readers[r].append(b)
    return Explanation(plan, tuple(
        ValueAccount(i, costs.ops[i], costs.sizes[i], counted.computed[i],
                     counted.resident_steps[i], tuple(readers[i])) for i in costs.op_nodes))
