"""``value_and_grad`` and ``grad``: differentiate a function of arrays (Algorithms 6.1/6.2).

The arguments named by ``argnums`` become variables of a fresh :class:`~.ops.Tape` (each may be
an array, a Python number, or a nested tuple/list/dict of them); the function runs once,
recording the graph (forward, Algorithm 6.1); one reverse sweep from the scalar output
(Algorithm 6.2) gives every gradient, with the argument's shape and dtype.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..checks import function, whole_number
from .backend import xp
from ..errors import ArgnumsError, NonScalarOutputError, OpError
from .ops import Tape, Tracer, check_value
from .trees import flatten


def check_argnums(argnums: object, name: str) -> None:
    """``argnums`` must be an integer or a tuple/list of distinct integers (never a bool)."""
    numbers = argnums if isinstance(argnums, (tuple, list)) else (argnums,)
    for number in numbers:
        whole_number(number, f"{name}: argnums", minimum=None, error=ArgnumsError)
    _refuse_repeats(argnums, numbers, name)


def argument_numbers(argnums: int | tuple[int, ...], count: int, name: str) -> tuple[int, ...]:
    """The argument numbers ``argnums`` names in a call with ``count`` positional arguments,
    made non-negative; raises :class:`ArgnumsError` for a bad type, an absent argument or one
    named twice (``(0, -2)`` with two arguments)."""
    check_argnums(argnums, name)
    numbers = tuple(argnums) if isinstance(argnums, (tuple, list)) else (argnums,)
    for number in numbers:
        if not -count <= number < count:
            raise ArgnumsError(f"{name}: argnums {argnums!r} is out of range for a call with "
                               f"{count} positional argument{'s' if count != 1 else ''}")
    numbers = tuple(int(number) % count for number in numbers)
    _refuse_repeats(argnums, numbers, name)
    return numbers


def _refuse_repeats(argnums: object, numbers: tuple, name: str) -> None:
    """An argument named twice would get its gradient split or lost between the two entries:
    refused (as ``torch.func`` does), so that each gradient returned is the whole gradient."""
    repeated = next((n for k, n in enumerate(numbers) if n in numbers[:k]), None)
    if repeated is not None:
        raise ArgnumsError(f"{name}: argnums {argnums!r} names argument {repeated} twice; "
                           "name each argument once")


def as_float_array(value: Any, what: str) -> Any:
    """A differentiable leaf: an inexact numpy array (Python numbers become float64)."""
    value = xp.asarray(check_value(what, value))
    if value.dtype.kind in "biu":
        if value.ndim:
            raise OpError(f"{what}: cannot differentiate with respect to an integer array "
                          f"(dtype {value.dtype}); pass floats")
        value = value.astype(xp.float64)
    return value


def scalar_output(output: Any, name: str) -> tuple[Any, Any]:
    """Split a function's output into (value, node or None), insisting on a scalar."""
    value = output.value if type(output) is Tracer else output
    value = xp.asarray(check_value(f"{name} output", value))
    if value.size != 1:
        raise NonScalarOutputError(f"{name}: the function's output must be a scalar (size 1) "
                                   f"to be differentiated, got shape {value.shape}")
    return value, (output.node if type(output) is Tracer else None)


def value_and_grad(fn: Callable[..., Any], argnums: int | tuple[int, ...] = 0
                   ) -> Callable[..., tuple[Any, Any]]:
    """Return ``f(*args) -> (value, gradient)``; a tuple of gradients when argnums is a tuple."""
    name = getattr(function(fn, "value_and_grad: fn"), "__name__", "function")
    check_argnums(argnums, name)

    def wrapped(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        numbers = argument_numbers(argnums, len(args), name)
        tape = Tape()
        boxed = list(args)
        variables = {}
        for number in numbers:
            leaves, unflatten = flatten(args[number])
            tracers = [tape.variable(as_float_array(leaf, f"{name} argument {number}"))
                       for leaf in leaves]
            variables[number] = (tracers, unflatten)
            boxed[number] = unflatten(tracers)
        value, node = scalar_output(fn(*boxed, **kwargs), name)
        if node is not None:
            tape.backward(node, xp.ones_like(value))
        gradients = tuple(unflatten([_gradient(t) for t in tracers])
                          for tracers, unflatten in (variables[k] for k in numbers))
        return value, (gradients if isinstance(argnums, (tuple, list)) else gradients[0])

    wrapped.__name__ = f"value_and_grad({name})"
    return wrapped


def _gradient(tracer: Tracer) -> Any:
    cot = tracer.node.cot
    if cot is None:
        return xp.zeros_like(tracer.value)
    return xp.array(cot, dtype=tracer.node.dtype, copy=True).reshape(tracer.node.shape)


def grad(fn: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """Return ``f(*args) -> gradient`` (see :func:`value_and_grad`)."""
    function(fn, "grad: fn")
    inner = value_and_grad(fn, argnums)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return inner(*args, **kwargs)[1]

    wrapped.__name__ = f"grad({getattr(fn, '__name__', 'function')})"
    return wrapped
