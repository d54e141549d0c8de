"""``check_grads``: the engine's gradient against central finite differences, in float64."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..checks import function, real_number
from .autodiff import argument_numbers, value_and_grad
from .backend import xp
from ..errors import GradientCheckError
from .ops import check_value
from .trees import flatten


def numerical_gradient(fn: Callable[..., Any], args: list[Any], number: int,
                       step: float) -> Any:
    """Central differences (f(x+h) - f(x-h)) / 2h of ``fn`` in argument ``number``."""
    x = args[number]
    gradient = xp.zeros_like(x)
    for index in xp.ndindex(x.shape):
        values = []
        for sign in (1.0, -1.0):
            shifted = x.copy()
            shifted[index] += sign * step
            values.append(float(xp.asarray(fn(*args[:number], shifted, *args[number + 1:]))))
        gradient[index] = (values[0] - values[1]) / (2 * step)
    return gradient


def _float64_leaves(tree: Any, what: str) -> tuple[list[Any], Callable[[list[Any]], Any]]:
    """The leaves of an argument as float64 arrays (complex values are refused, as by grad)."""
    leaves, unflatten = flatten(tree)
    return [xp.array(check_value(what, leaf), dtype=xp.float64) for leaf in leaves], unflatten


def check_grads(fn: Callable[..., Any], *args: Any, argnums: int | tuple[int, ...] | None = None,
                step: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Check the gradients of ``fn`` in the arguments ``argnums`` (default: every positional
    argument); raise :class:`GradientCheckError` naming the worst coordinate.

    Each checked argument may be an array, a number or a nested tuple/list/dict of them, as for
    :func:`~checkpoint_ad.grad`; its leaves are converted to float64 arrays (complex values are
    refused); other arguments are passed unchanged. A coordinate passes when both gradients are
    finite and ``|engine - numeric| <= atol + rtol * |numeric|``. ``step`` (> 0) is the
    finite-difference step h; ``rtol`` and ``atol`` are finite and >= 0.
    """
    name = getattr(function(fn, "check_grads: fn"), "__name__", "function")
    step = real_number(step, "check_grads: step")
    rtol = real_number(rtol, "check_grads: rtol", positive=False)
    atol = real_number(atol, "check_grads: atol", positive=False)
    numbers = argument_numbers(tuple(range(len(args))) if argnums is None else argnums,
                               len(args), f"check_grads({name})")
    arguments = list(args)
    structures = {}
    for number in numbers:
        structures[number] = _float64_leaves(args[number], f"{name} argument {number}")
        arguments[number] = structures[number][1](structures[number][0])
    _, gradients = value_and_grad(fn, numbers)(*arguments)
    for number, tree in zip(numbers, gradients):
        leaves, unflatten = structures[number]
        for position, engine in enumerate(flatten(tree)[0]):
            def of_leaf(leaf: Any, *, number: int = number, position: int = position) -> Any:
                changed = leaves[:position] + [leaf] + leaves[position + 1:]
                return fn(*arguments[:number], unflatten(changed), *arguments[number + 1:])

            numeric = numerical_gradient(of_leaf, [leaves[position]], 0, step)
            where = f"argument {number}" + (f" leaf {position}" if len(leaves) > 1 else "")
            _compare(name, where, xp.asarray(engine), numeric, rtol, atol)


def _compare(name: str, where: str, engine: Any, numeric: Any, rtol: float, atol: float) -> None:
    """Raise :class:`GradientCheckError` at the worst coordinate (a non-finite one first)."""
    finite = xp.isfinite(engine) & xp.isfinite(numeric)
    with xp.errstate(invalid="ignore"):
        error = xp.where(finite, xp.abs(engine - numeric) - (atol + rtol * xp.abs(numeric)),
                         xp.inf)
    if error.size and error.max() > 0:
        worst = xp.unravel_index(xp.argmax(error), error.shape)
        problem = "" if finite[worst] else "not finite: "
        raise GradientCheckError(
            f"{name}: gradient of {where} at index {tuple(int(i) for i in worst)}: {problem}"
            f"engine {float(engine[worst])!r}, finite differences {float(numeric[worst])!r} "
            f"(rtol={rtol}, atol={atol})")
