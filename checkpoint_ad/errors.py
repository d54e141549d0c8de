"""The package's exception hierarchy.

Every error a user can cause derives from :class:`CheckpointADError`, so that
callers (and the CLI) can catch the package's own failures and nothing else.
Messages name the op, stage, policy or step involved.
"""
from __future__ import annotations


class CheckpointADError(Exception):
    """Base class of every error raised by checkpoint_ad."""


class ArgumentError(CheckpointADError, ValueError, TypeError):
    """An argument of a public function has a wrong type or value (a bool where a count is
    meant, NaN, a negative size, a non-function); the message names it and what is accepted.
    Both a ValueError and a TypeError, so either ``except`` catches it."""


class OpError(CheckpointADError, TypeError):
    """An op was applied to something it cannot work on (not array-like, bad arguments)."""


class ShapeError(CheckpointADError, ValueError):
    """Shapes that do not broadcast or do not fit an op; the message names the op and shapes."""


class NonScalarOutputError(CheckpointADError, ValueError):
    """``grad``/``value_and_grad`` was given a function whose output is not a scalar."""


class ArgnumsError(ArgumentError):
    """``argnums`` is not an int or a tuple of ints, or names an argument that does not exist."""


class GradientCheckError(CheckpointADError, AssertionError):
    """Finite differences and the engine's gradient disagree."""


class UnknownNameError(CheckpointADError, KeyError):
    """A registry lookup (op, policy, workload, experiment) failed; lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PlanError(CheckpointADError, ValueError):
    """A plan breaks an invariant; the message names the offending step."""


class PolicyError(CheckpointADError, ValueError):
    """A policy was given parameters it cannot plan with."""


class BudgetError(PolicyError):
    """A memory budget is below the smallest feasible one; the message names that minimum."""


class TimeLimitError(BudgetError):
    """A planner's ``time_limit`` ran out before it found a plan within the budget; the
    message names the limit and says to raise it."""


class StageError(CheckpointADError, ValueError):
    """A stage misbehaved: changed shape or dtype, or recomputed different values."""


class NonFiniteError(StageError):
    """A stage produced NaN or Inf (raised only when ``check_finite=True``)."""


class ExperimentError(CheckpointADError, ValueError):
    """An experiment spec or a results file is malformed."""
