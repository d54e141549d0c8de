"""The array-backend seam: the engine and the executor reach numpy only through ``xp``.

A library with numpy's interface (CuPy, say) could be plugged in here later; nothing else in
the engine imports numpy directly for computation.
"""
from __future__ import annotations

import numpy as xp

ndarray = xp.ndarray
ARRAY_TYPES = (xp.ndarray, xp.generic)


def buffer_root(array: object) -> object:
    """The array that owns the memory behind ``array`` (itself unless it is a view)."""
    base = getattr(array, "base", None)
    while isinstance(base, xp.ndarray):
        array, base = base, base.base
    return array


__all__ = ["xp", "ndarray", "ARRAY_TYPES", "buffer_root"]
