"""``check_grads``: the engine's gradient against central finite differences, in float64."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .autodiff import value_and_grad
from .backend import xp
from ..errors import GradientCheckError


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


def check_grads(fn: Callable[..., Any], *args: Any, step: float = 1e-6, rtol: float = 1e-5,
                atol: float = 1e-6) -> None:
    """Check every argument's gradient; raise :class:`GradientCheckError` naming the worst one.

    Arguments are converted to float64 arrays. A coordinate passes when
    ``|engine - numeric| <= atol + rtol * |numeric|``.
    """
    args = [xp.array(a, dtype=xp.float64) for a in args]
    numbers = tuple(range(len(args)))
    _, gradients = value_and_grad(fn, numbers)(*args)
    for number, engine in zip(numbers, gradients):
        numeric = numerical_gradient(fn, args, number, step)
        error = xp.abs(engine - numeric) - (atol + rtol * xp.abs(numeric))
        if error.size and error.max() > 0:
            worst = xp.unravel_index(xp.argmax(error), error.shape)
            raise GradientCheckError(
                f"{getattr(fn, '__name__', 'function')}: gradient of argument {number} at index "
                f"{tuple(int(i) for i in worst)}: engine {float(engine[worst])!r}, finite differences "
                f"{float(numeric[worst])!r} (rtol={rtol}, atol={atol})")
