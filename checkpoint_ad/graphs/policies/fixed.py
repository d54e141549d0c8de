"""The fixed graph policies of docs/graph_model.md: store_all, recompute_all, and save_ops
(JAX's ``dots_saveable``, PyTorch's selective checkpointing): keep the outputs of chosen op
types, recompute everything else before the backward step that needs it."""
from __future__ import annotations

from collections.abc import Sequence

from ...errors import PolicyError
from ...plans.registry import Parameter, PolicySpec
from ..costs import GraphCosts
from ..plans import GraphPlan
from .steps import keep_and_recompute


def plan_store_all(costs: GraphCosts) -> GraphPlan:
    """Compute every op once in index order; free each value after its last use."""
    return GraphPlan.build(costs, keep_and_recompute(costs, set(costs.op_nodes)), "store_all",
                           {}, status="fixed")


def plan_recompute_all(costs: GraphCosts) -> GraphPlan:
    """Keep only the output; recompute from the inputs what each backward step reads."""
    return GraphPlan.build(costs, keep_and_recompute(costs, set()), "recompute_all", {},
                           status="fixed")


def plan_save_ops(costs: GraphCosts, ops: Sequence[str] | str = ("matmul",)) -> GraphPlan:
    """Keep the outputs of the op types ``ops``; recompute the rest from the nearest kept
    values before the backward step that needs it."""
    names = (ops,) if isinstance(ops, str) else ops
    if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) for n in names):
        raise PolicyError(f"policy 'save_ops': ops must be a sequence of op names, got {ops!r}")
    present = {name for name in costs.ops if name is not None}
    from ...engine.ops import OPS  # the op registry: names a graph may contain
    unknown = sorted(set(names) - set(OPS) - present)
    if unknown:
        raise PolicyError(f"policy 'save_ops': unknown op {', '.join(map(repr, unknown))}; "
                          f"known ops: {', '.join(sorted(set(OPS) | present))}")
    kept = {i for i in costs.op_nodes if costs.ops[i] in set(names)}
    return GraphPlan.build(costs, keep_and_recompute(costs, kept), "save_ops",
                           {"ops": tuple(names)}, status="fixed")


STORE_ALL = PolicySpec("store_all", "keep every value until its last use", plan_store_all)
RECOMPUTE_ALL = PolicySpec("recompute_all", "keep only the output; recompute the rest from the "
                           "inputs before each backward step", plan_recompute_all)
SAVE_OPS = PolicySpec("save_ops", "keep the outputs of chosen op types, recompute the rest",
                      plan_save_ops, (Parameter("ops", tuple, ("matmul",),
                                                "op names whose outputs are kept"),))
