"""``sequential``: a checkpointed chain as one op inside a differentiated function.

Like torch's ``checkpoint_sequential`` inside a model: the stages run under a policy's plan.
The op's forward runs the plan up to its first reversal, keeping stage n's tape so that it can
return ``x_n``; its VJP receives ``dL/dx_n`` and runs the rest of the plan. What the plan keeps
is held by the op's own executor, not by the outer tape (``trace`` shows the op keeping 0 bytes).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..engine import rng
from ..engine.rng import check_seed
from . import policies
from ..engine.backend import xp
from .chain import Chain, Stage, evaluate, profile_chain
from .executor import ArrayRunner, Executor
from ..plans.memory import Meter
from ..engine.ops import Node, Op, Saves, Tracer, apply, value_of
from ..engine.trees import flatten


def _forward(x: Any, *leaves: Any, executor: Executor, runner: ArrayRunner) -> Any:
    return executor.forward(x)


def _vjp(g: Any, node: Node) -> tuple:
    executor, runner = node.params["executor"], node.params["runner"]
    grad_x = executor.reverse(lambda x_n: xp.require(g, requirements="C").copy())
    return (grad_x, *[leaf for totals in runner.gradients for leaf in totals])


_SEQUENTIAL = Op("sequential", _forward, _vjp, Saves.NOTHING)


def _raw_chain(chain: Chain) -> tuple[Chain, list[Any]]:
    """The chain with raw parameter values, and the (possibly traced) leaves of each group."""
    raw: dict[int, Any] = {}
    leaves: list[Any] = []
    for group in chain.parameter_groups():
        group_leaves, unflatten = flatten(group)
        leaves += group_leaves
        raw[id(group)] = unflatten([value_of(leaf) for leaf in group_leaves])
    stages = [Stage(s.fn, None if s.params is None else raw[id(s.params)], s.name)
              for s in chain.stages]
    return Chain(stages), leaves


def sequential(stages: Chain | Sequence[Stage], x: Any, policy: str = "store_all", *,
               seed: int | None = None, **policy_params: Any) -> Any:
    """Apply the stages to ``x`` under ``policy``; differentiable with respect to ``x`` and to
    every stage's params (which may be values being differentiated)."""
    chain = stages if isinstance(stages, Chain) else Chain(stages)
    policies.check_params(policy, **policy_params)  # at the call, differentiated or not
    raw_chain, leaves = _raw_chain(chain)
    seed = rng.fresh_seed() if seed is None else check_seed(seed, "sequential")
    x_value = value_of(x)
    if type(x) is not Tracer and not any(type(leaf) is Tracer for leaf in leaves):
        for t, stage in enumerate(raw_chain.stages, 1):
            x_value = evaluate(stage, t, x_value, seed)
        return x_value
    profile = profile_chain(raw_chain, x_value, seed)
    costs = replace(profile.costs(), returns_output=True)  # x_n is returned: its tape held
    plan = policies.make_plan(policy, costs, **policy_params)
    runner = ArrayRunner(raw_chain, seed, profile)
    executor = Executor(plan, runner, Meter(record_timeline=False))
    return apply(_SEQUENTIAL, (x, *leaves), {"executor": executor, "runner": runner})
