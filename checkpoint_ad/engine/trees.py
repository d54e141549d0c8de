"""Minimal pytrees: nested tuples, lists and dicts of leaves (arrays, scalars, tracers, None).

Used for stage parameters and for differentiating with respect to structured arguments.
Dict keys are visited in sorted order so that flattening is deterministic.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any


def flatten(tree: Any) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """Return the leaves of ``tree`` (None is an empty subtree) and a function rebuilding it."""
    leaves: list[Any] = []

    def visit(node: Any) -> Callable[[Callable[[], Any]], Any]:
        if node is None:
            return lambda take: None
        if isinstance(node, (tuple, list)):
            parts = [visit(child) for child in node]
            kind = type(node)
            return lambda take: kind(part(take) for part in parts)
        if isinstance(node, dict):
            keys = sorted(node)
            parts = [visit(node[key]) for key in keys]
            return lambda take: {key: part(take) for key, part in zip(keys, parts)}
        leaves.append(node)
        return lambda take: take()

    build = visit(tree)

    def unflatten(values: list[Any]) -> Any:
        iterator = iter(values)
        return build(lambda: next(iterator))

    return leaves, unflatten
