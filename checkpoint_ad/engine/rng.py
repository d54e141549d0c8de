"""Random numbers that recomputation replays exactly.

Inside a chain, stage ``t`` of a run with seed ``s`` draws from a generator seeded by
``(s, t)`` and recreated before every evaluation of that stage, so a recomputed stage sees the
very numbers its first evaluation saw, under every policy. Outside a chain, :func:`generator`
is a module-wide generator that :func:`seed` resets.
"""
from __future__ import annotations

import numbers
from typing import Any

from ..checks import whole_number
from .backend import xp
from ..errors import OpError
from .ops import value_of
from .primitives import multiply

_global = xp.random.default_rng()
_stage_key: tuple[int, int] | None = None
_stage_generator: Any = None


def check_seed(value: object, caller: str) -> int:
    """A seed: an integer >= 0 (never a bool); else :class:`ArgumentError` naming ``caller``."""
    return whole_number(value, f"{caller}: seed", minimum=0)


def seed(value: int) -> None:
    """Reset the generator used outside chains (``value``: an integer >= 0)."""
    global _global
    _global = xp.random.default_rng(check_seed(value, "seed_random"))


def generator() -> Any:
    """The generator for the current stage evaluation (created on first use), or the global one."""
    global _stage_generator
    if _stage_key is None:
        return _global
    if _stage_generator is None:
        _stage_generator = xp.random.default_rng(list(_stage_key))
    return _stage_generator


def fresh_seed() -> int:
    """A seed for a new run: drawn from the current stage's stream when called inside a stage
    evaluation (so that a nested run is replayed exactly when that stage is recomputed), else
    from fresh entropy."""
    source = generator() if _stage_key is not None else xp.random.default_rng()
    return int(source.integers(2**32))


def enter_stage(run_seed: int, stage: int) -> tuple[Any, Any]:
    """Evaluate stage ``stage`` with the random stream of ``(run_seed, stage)`` until
    :func:`leave_stage` is given the returned token (the previous stream)."""
    global _stage_key, _stage_generator
    token = (_stage_key, _stage_generator)
    _stage_key, _stage_generator = (run_seed, stage), None
    return token


def leave_stage(token: tuple[Any, Any]) -> None:
    global _stage_key, _stage_generator
    _stage_key, _stage_generator = token


def dropout(x: Any, rate: float) -> Any:
    """Inverted dropout: zero each element with probability ``rate``, scale the rest by
    1/(1-rate). The mask is a constant the multiply keeps for backward."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise OpError(f"dropout: rate must be a number in [0, 1), got {rate!r}")
    value = value_of(x)
    keep = generator().random(xp.shape(value)) >= rate
    scale = xp.asarray(keep / (1 - rate), dtype=xp.result_type(value))
    return multiply(x, scale)
