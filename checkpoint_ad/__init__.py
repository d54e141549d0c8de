"""checkpoint_ad: reverse-mode AD on numpy with pluggable store-versus-recompute policies.

The data flow is one way: model -> graph -> plan (policy) -> execute -> measure -> report.
"""
from __future__ import annotations

from .engine import operators as _operators  # noqa: F401  (installs Tracer's Python operators)
from .chains import policies
from .engine.autodiff import grad, value_and_grad
from .chains.backprop import Result, Stats, backprop, plan
from .chains.chain import Chain, ChainProfile, Stage, profile_chain
from .engine.composites import (dot, expand_dims, log_softmax, logsumexp, mean, softmax, square,
                                stack, stop_gradient)
from .errors import (ArgnumsError, ArgumentError, BudgetError, CheckpointADError, ExperimentError,
                     GradientCheckError, NonFiniteError, NonScalarOutputError, OpError, PlanError,
                     PolicyError, ShapeError, StageError, TimeLimitError, UnknownNameError)
from .engine.gradcheck import check_grads
from .graphs.backprop import GraphResult, GraphStats, backprop_graph
from .graphs.bounds import GraphLowerBound, graph_lower_bound
from .graphs.costs import GraphCosts
from .graphs.program import graph_costs
from .graphs.plans import GraphAction, GraphPlan, GraphStep, check_graph_plan
from .graphs.policies import plan_graph
from .engine.graph import Graph, trace
from .engine.ops import OPS, Tracer
from .chains.costs import ChainCosts
from .chains.plans import Action, Plan, PlanBuilder, Step, check_plan
from .engine.rng import dropout
from .engine.rng import seed as seed_random
from .chains.replay import peak_bytes
from .chains.sequential import sequential
from .lab.budgets import minimum_budget
from .lab.side_by_side import compare
from .version import __version__
from .engine.primitives import (abs, add, broadcast_to, clip, concatenate, cos, divide, equal,
                                exp, getitem, greater, greater_equal, less, less_equal, log,
                                matmul, max, maximum, minimum, multiply, negative, not_equal, power,
                                relu, reshape, sigmoid, sin, sqrt, subtract, sum, tanh, transpose,
                                where)
