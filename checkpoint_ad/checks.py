"""Validators of public arguments, shared by every call site so that all refuse alike.

Each returns the value (normalized: a Python int or float) or raises ``error`` (by default
:class:`~checkpoint_ad.errors.ArgumentError`) with one line naming ``what`` and what is
accepted. A bool is never taken for a number: ``True`` is refused where a count is meant.
"""
from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import ArgumentError


def whole_number(value: object, what: str, *, minimum: int | None = 0,
                 error: type[Exception] = ArgumentError, noun: str = "integer") -> int:
    """An integer (numpy integers too, never a bool) of at least ``minimum`` (None: any).
    ``noun`` names what is accepted in the message ("integer", "whole number of bytes")."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum)):
        article = "an" if noun[0] in "aeiou" else "a"
        if minimum is None:
            accepted = f"{article} {noun}"
        elif minimum == 1:
            accepted = f"a positive {noun}"
        else:
            accepted = f"{article} {noun} >= {minimum}"
        raise error(f"{what} must be {accepted}, got {shown(value)}")
    return int(value)


def real_number(value: object, what: str, *, positive: bool = True,
                error: type[Exception] = ArgumentError) -> float:
    """A finite real number (never a bool) that is > 0, or >= 0 when ``positive`` is False.
    An integer too large for a float (``10**400``) is not finite."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(_as_float(value)) or value < 0 or (positive and value == 0)):
        accepted = "a finite number > 0" if positive else "a finite number >= 0"
        raise error(f"{what} must be {accepted}, got {shown(value)}")
    return float(value)


def _as_float(value: numbers.Real) -> float:
    """``value`` as a float; infinite when it is beyond the largest float."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


def finite_total(values: Iterable[float], what: str, *,
                 error: type[Exception] = ArgumentError) -> float:
    """The sum of finite numbers ``values``, refused when it is beyond the largest float (a
    plan's cost adds them up, so each being finite is not enough)."""
    try:
        total = math.fsum(values)
    except OverflowError:
        total = math.inf
    if not math.isfinite(total):
        raise error(f"{what} must add up to a finite number (at most {sys.float_info.max:.3g}); "
                    "theirs overflows a float")
    return total


def plain(value: object) -> object:
    """A numpy scalar (``np.int64(3)``, ``np.True_``, a 0-d array) as the Python number or bool
    it holds, so that checks and records see plain values; anything else unchanged."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()  # type: ignore[attr-defined]
    return value


def flag(value: object, what: str, *, error: type[Exception] = ArgumentError) -> bool:
    """True or False (a numpy bool too); never a number, a string or None."""
    value = plain(value)
    if not isinstance(value, bool):
        raise error(f"{what} must be True or False, got {shown(value)}")
    return value


def sequence(values: object, what: str, *, length: int | None = None,
             error: type[Exception] = ArgumentError) -> tuple:
    """A list, tuple or other sequence, or a 1-D array (its entries as Python numbers), as a
    tuple of ``length`` entries (None: any number); never a string or a scalar."""
    if getattr(values, "ndim", None) == 1 and hasattr(values, "tolist"):
        values = values.tolist()  # type: ignore[attr-defined]
    if (isinstance(values, (str, bytes)) or not isinstance(values, Sequence)):
        raise error(f"{what} must be a sequence or a 1-D array, got {shown(values)}")
    if length is not None and len(values) != length:
        raise error(f"{what} has {len(values)} {'entry' if len(values) == 1 else 'entries'}, "
                    f"expected {length}")
    return tuple(values)


def shown(value: object, width: int = 60) -> str:
    """``repr(value)`` on one line for a message, cut to ``width`` characters (``10**400`` has
    401 digits; a 2-D array's repr spans lines)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def function(value: Any, what: str) -> Callable[..., Any]:
    """A callable; anything else is refused naming its type."""
    if not callable(value):
        raise ArgumentError(f"{what} must be a function, got {type(value).__name__} "
                            f"{shown(value)}")
    return value
