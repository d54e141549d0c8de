"""Random numbers that recomputation replays exactly.

Inside a chain, stage ``t`` of a run with seed ``s`` draws from a generator seeded by
``(s, t)`` and recreated before every evaluation of that stage, so a recomputed stage sees the
very numbers its first evaluation saw, under every policy. Outside a chain, :func:`generator`
is a module-wide generator that :func:`seed` resets.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .backend import xp
from .errors import OpError
from .ops import value_of
from .primitives import multiply

_global = xp.random.default_rng()
_stage_key: tuple[int, int] | None = None
_stage_generator: Any = None


def seed(value: int) -> None:
    """Reset the generator used outside chains."""
    global _global
    _global = xp.random.default_rng(value)


def generator() -> Any:
    """The generator for the current stage evaluation (created on first use), or the global one."""
    global _stage_generator
    if _stage_key is None:
        return _global
    if _stage_generator is None:
        _stage_generator = xp.random.default_rng(list(_stage_key))
    return _stage_generator


@contextmanager
def stage_stream(run_seed: int, stage: int) -> Iterator[None]:
    """Evaluate stage ``stage`` with the random stream of ``(run_seed, stage)``."""
    global _stage_key, _stage_generator
    outer = (_stage_key, _stage_generator)
    _stage_key, _stage_generator = (run_seed, stage), None
    try:
        yield
    finally:
        _stage_key, _stage_generator = outer


def dropout(x: Any, rate: float) -> Any:
    """Inverted dropout: zero each element with probability ``rate``, scale the rest by
    1/(1-rate). The mask is a constant the multiply keeps for backward."""
    if not 0 <= rate < 1:
        raise OpError(f"dropout: rate must be in [0, 1), got {rate!r}")
    value = value_of(x)
    keep = generator().random(xp.shape(value)) >= rate
    scale = xp.asarray(keep / (1 - rate), dtype=xp.result_type(value))
    return multiply(x, scale)
