"""Validators of public arguments, shared by every call site so that all refuse alike.

Each returns the value (normalized: a Python int or float) or raises ``error`` (by default
:class:`~checkpoint_ad.errors.ArgumentError`) with one line naming ``what`` and what is
accepted. A bool is never taken for a number: ``True`` is refused where a count is meant.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

from .errors import ArgumentError


def whole_number(value: object, what: str, *, minimum: int | None = 0,
                 error: type[Exception] = ArgumentError) -> int:
    """An integer (numpy integers too, never a bool) of at least ``minimum`` (None: any)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum)):
        if minimum is None:
            accepted = "an integer"
        elif minimum == 1:
            accepted = "a positive integer"
        else:
            accepted = f"an integer >= {minimum}"
        raise error(f"{what} must be {accepted}, got {value!r}")
    return int(value)


def real_number(value: object, what: str, *, positive: bool = True,
                error: type[Exception] = ArgumentError) -> float:
    """A finite real number (never a bool) that is > 0, or >= 0 when ``positive`` is False."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        accepted = "a finite number > 0" if positive else "a finite number >= 0"
        raise error(f"{what} must be {accepted}, got {value!r}")
    return float(value)


def function(value: Any, what: str) -> Callable[..., Any]:
    """A callable; anything else is refused naming its type."""
    if not callable(value):
        raise ArgumentError(f"{what} must be a function, got {type(value).__name__} "
                            f"{value!r:.60}")
    return value
