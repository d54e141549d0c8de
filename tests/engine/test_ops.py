"""Every op and public function, gradchecked against central finite differences in float64.

The case table is keyed by the op registry (``checkpoint_ad.OPS``) and by the public composite
functions: ``test_every_registered_op_has_a_case`` fails as soon as an op is registered without
a case here, so a new op cannot be forgotten.

Each case is a function of arrays written with the public API, the shapes of its inputs, a
numpy reference for its forward value and, where the op has kinks or a restricted domain, the
samplers that keep random inputs away from them (positive bases, no ties, away from 0, ...).
The gradient of a non-scalar output is checked through a random projection ``sum(out * w)``,
which exercises the full vector-Jacobian product (a plain ``sum`` would hide transposed or
permuted cotangents).
"""
from __future__ import annotations

import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import checkpoint_ad as ad
from checkpoint_ad.engine import composites
from checkpoint_ad.engine.ops import Tracer, value_of

# --- input samplers: (rng, shape) -> float64 array ------------------------------------------


def normal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.asarray(rng.standard_normal(shape))


def positive(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Inside the domain of log, sqrt and real powers, away from 0."""
    return np.asarray(rng.uniform(0.5, 2.0, shape))


def away_from_zero(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Away from the kink of abs and relu and from the pole of 1/x."""
    return np.asarray(rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape))


def distinct(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """All values at least 0.05 apart: no ties for max (a tie is a kink)."""
    count = int(np.prod(shape, dtype=int))
    values = rng.permutation(count) * 0.1 + rng.uniform(0.0, 0.05, count) - 0.05 * count
    return values.reshape(shape)


def grid(offset: float) -> Callable[[np.random.Generator, tuple], np.ndarray]:
    """Values on 0.1 * k + offset (+ a little noise): two grids with different offsets never
    come closer than 0.03, so maximum/minimum of them have no ties."""
    def sample(rng: np.random.Generator, shape: tuple) -> np.ndarray:
        return np.asarray(0.1 * rng.integers(-15, 15, shape) + offset + rng.uniform(0, 0.01, shape))
    return sample


def inside(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Strictly inside the clip bounds (-1, 1), away from them."""
    return np.asarray(rng.uniform(-0.8, 0.8, shape))


def around(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Inside and outside the clip bounds (-1, 1), at least 0.2 from either bound."""
    return np.asarray(rng.choice([-1.6, 0.0, 1.6], shape) + rng.uniform(-0.4, 0.4, shape))


# --- the case table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str            # registered op name, or public composite function name
    label: str
    fn: Callable
    reference: Callable  # numpy forward
    shapes: tuple
    samplers: tuple | None = None

    @property
    def id(self) -> str:
        return f"{self.name}-{self.label}"

    def inputs(self, dtype: type = np.float64) -> list[np.ndarray]:
        rng = np.random.default_rng(zlib.crc32(self.id.encode()))
        samplers = self.samplers or (normal,) * len(self.shapes)
        assert len(samplers) == len(self.shapes), self.id
        return [sample(rng, shape).astype(dtype) for sample, shape in zip(samplers, self.shapes)]


CASES: list[Case] = []


def case(name: str, label: str, fn: Callable, reference: Callable, *shapes: tuple,
         samplers: tuple | None = None) -> None:
    CASES.append(Case(name, label, fn, reference, shapes, samplers))


def sigmoid_reference(x):
    return 1 / (1 + np.exp(-x))


UNARY = [
    ("negative", ad.negative, np.negative, normal),
    ("sin", ad.sin, np.sin, normal),
    ("cos", ad.cos, np.cos, normal),
    ("exp", ad.exp, np.exp, normal),
    ("log", ad.log, np.log, positive),
    ("tanh", ad.tanh, np.tanh, normal),
    ("sqrt", ad.sqrt, np.sqrt, positive),
    ("abs", ad.abs, np.abs, away_from_zero),
    ("sigmoid", ad.sigmoid, sigmoid_reference, normal),
    ("relu", ad.relu, lambda x: np.maximum(x, 0), away_from_zero),
    ("square", ad.square, np.square, normal),
]
for _name, _fn, _ref, _sampler in UNARY:
    for _shape in [(), (5,), (2, 3)]:
        case(_name, f"shape{_shape}", _fn, _ref, _shape, samplers=(_sampler,))
case("negative", "operator", lambda x: -x, np.negative, (2, 3))
case("negative", "operator-0d", lambda x: -x, np.negative, ())
case("abs", "builtin", lambda x: abs(x), np.abs, (2, 3), samplers=(away_from_zero,))
case("sigmoid", "large-magnitude", ad.sigmoid, sigmoid_reference, (6,),
     samplers=(lambda rng, shape: rng.uniform(-30, 30, shape),))

BINARY = [
    ("add", ad.add, np.add, (normal, normal)),
    ("subtract", ad.subtract, np.subtract, (normal, normal)),
    ("multiply", ad.multiply, np.multiply, (normal, normal)),
    ("divide", ad.divide, np.divide, (normal, away_from_zero)),
    ("power", ad.power, np.power, (positive, normal)),
    ("maximum", ad.maximum, np.maximum, (grid(0.0), grid(0.05))),
    ("minimum", ad.minimum, np.minimum, (grid(0.0), grid(0.05))),
]
BROADCASTS = [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((2, 3, 4), (4,)),
              ((), (2, 3)), ((2, 3), ()), ((), ()), ((2, 1, 3), (4, 1))]
for _name, _fn, _ref, _samplers in BINARY:
    for _sx, _sy in BROADCASTS:
        case(_name, f"{_sx}&{_sy}", _fn, _ref, _sx, _sy, samplers=_samplers)
    # a Python float constant on either side (never traced)
    _left = 1.7 if _name == "power" else 0.33
    case(_name, "float&array", lambda y, f=_fn, c=_left: f(c, y),
         lambda y, f=_ref, c=_left: f(c, y), (2, 3), samplers=_samplers[1:])
    _right = 2.5 if _name == "power" else 0.33
    case(_name, "array&float", lambda x, f=_fn, c=_right: f(x, c),
         lambda x, f=_ref, c=_right: f(x, c), (2, 3), samplers=_samplers[:1])

case("power", "int-exponent", lambda x: ad.power(x, 3), lambda x: x ** 3, (4,), samplers=(normal,))
case("power", "negative-exponent", lambda x: x ** -1.5, lambda x: x ** -1.5, (4,),
     samplers=(positive,))
case("power", "constant-array-base", lambda y: ad.power(np.array([0.7, 1.3, 2.0]), y),
     lambda y: np.power(np.array([0.7, 1.3, 2.0]), y), (2, 3))

# Python operators, including the reflected forms with a constant on the left.
OPERATORS = [
    ("add", "operator", lambda x, y: x + y, np.add, (normal, normal)),
    ("subtract", "operator", lambda x, y: x - y, np.subtract, (normal, normal)),
    ("multiply", "operator", lambda x, y: x * y, np.multiply, (normal, normal)),
    ("divide", "operator", lambda x, y: x / y, np.divide, (normal, away_from_zero)),
    ("power", "operator", lambda x, y: x ** y, np.power, (positive, normal)),
]
for _name, _label, _fn, _ref, _samplers in OPERATORS:
    case(_name, _label, _fn, _ref, (3, 1), (1, 4), samplers=_samplers)
_CONSTANT = np.array([[0.5, -1.5, 2.0, 0.7]])
case("add", "operator-reflected-float", lambda x: 1.5 + x, lambda x: 1.5 + x, (2, 4))
case("add", "operator-reflected-array", lambda x: _CONSTANT + x, lambda x: _CONSTANT + x, (2, 4))
case("subtract", "operator-reflected-array", lambda x: _CONSTANT - x, lambda x: _CONSTANT - x,
     (2, 4))
case("multiply", "operator-reflected-float", lambda x: 2.0 * x, lambda x: 2.0 * x, (2, 4))
case("multiply", "operator-reflected-numpy-scalar", lambda x: np.float64(-3.0) * x,
     lambda x: np.float64(-3.0) * x, (2, 4))
case("divide", "operator-reflected-float", lambda x: 1.0 / x, lambda x: 1.0 / x, (2, 4),
     samplers=(away_from_zero,))
case("power", "operator-reflected-float", lambda x: 2.0 ** x, lambda x: 2.0 ** x, (2, 4))
case("multiply", "operator-shared", lambda x: x * x * x, lambda x: x ** 3, (2, 4))

MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (5, 3, 4)), ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)),
                 ((3,), (5, 3, 4)), ((5, 2, 3), (3,)), ((2, 1, 2, 3), (4, 3, 2))]
for _sa, _sb in MATMUL_SHAPES:
    case("matmul", f"{_sa}@{_sb}", ad.matmul, np.matmul, _sa, _sb)
case("matmul", "operator", lambda a, b: a @ b, np.matmul, (2, 3), (3, 4))
case("matmul", "operator-1d", lambda a, b: a @ b, np.matmul, (3,), (3,))
_LEFT = np.array([[1.0, -2.0, 0.5], [0.3, 0.0, 4.0]])
case("matmul", "operator-reflected-array", lambda b: _LEFT @ b, lambda b: _LEFT @ b, (3, 4))
for _sa, _sb in [((), (3,)), ((2, 3), ()), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)),
                 ((2, 3), (3, 4))]:
    case("dot", f"{_sa}.{_sb}", ad.dot, np.dot, _sa, _sb)

AXES = [None, 0, 1, -1, (0, 2), (-1, 0), ()]
for _axis in AXES:
    for _keep in (False, True):
        _label = f"axis={_axis}-keepdims={_keep}"
        case("sum", _label, lambda x, a=_axis, k=_keep: ad.sum(x, axis=a, keepdims=k),
             lambda x, a=_axis, k=_keep: np.sum(x, axis=a, keepdims=k), (2, 3, 4))
        case("max", _label, lambda x, a=_axis, k=_keep: ad.max(x, axis=a, keepdims=k),
             lambda x, a=_axis, k=_keep: np.max(x, axis=a, keepdims=k), (2, 3, 4),
             samplers=(distinct,))
        case("mean", _label, lambda x, a=_axis, k=_keep: ad.mean(x, axis=a, keepdims=k),
             lambda x, a=_axis, k=_keep: np.mean(x, axis=a, keepdims=k), (2, 3, 4))


def logsumexp_reference(x, axis=None, keepdims=False):
    shift = np.max(x, axis=axis, keepdims=True)
    result = np.log(np.sum(np.exp(x - shift), axis=axis, keepdims=True)) + shift
    return result if keepdims else np.squeeze(result, axis=axis)


def log_softmax_reference(x, axis=-1):
    return x - logsumexp_reference(x, axis=axis, keepdims=True)


for _axis in [a for a in AXES if a != ()]:
    for _keep in (False, True):
        case("logsumexp", f"axis={_axis}-keepdims={_keep}",
             lambda x, a=_axis, k=_keep: ad.logsumexp(x, axis=a, keepdims=k),
             lambda x, a=_axis, k=_keep: logsumexp_reference(x, a, k), (2, 3, 4))
    case("log_softmax", f"axis={_axis}", lambda x, a=_axis: ad.log_softmax(x, axis=a),
         lambda x, a=_axis: log_softmax_reference(x, a), (2, 3, 4))
    case("softmax", f"axis={_axis}", lambda x, a=_axis: ad.softmax(x, axis=a),
         lambda x, a=_axis: np.exp(log_softmax_reference(x, a)), (2, 3, 4))
case("sum", "0d", ad.sum, np.sum, ())
case("sum", "method", lambda x: x.sum(axis=1), lambda x: x.sum(axis=1), (2, 3))
case("max", "1d", ad.max, np.max, (7,), samplers=(distinct,))
case("mean", "method", lambda x: x.mean(axis=0), lambda x: x.mean(axis=0), (2, 3))
case("logsumexp", "default", ad.logsumexp, logsumexp_reference, (5,))
case("logsumexp", "large-values", lambda x: ad.logsumexp(x * 300.0, axis=1),
     lambda x: logsumexp_reference(x * 300.0, axis=1), (3, 4))
case("softmax", "default", ad.softmax, lambda x: np.exp(log_softmax_reference(x)), (3, 4))
case("log_softmax", "default", ad.log_softmax, log_softmax_reference, (3, 4))

for _shape, _new in [((2, 3, 4), (6, -1)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, 1, 6)),
                     ((), (1, 1)), ((6,), (3, 2)), ((2, 3), -1)]:
    case("reshape", f"{_shape}->{_new}", lambda x, s=_new: ad.reshape(x, s),
         lambda x, s=_new: np.reshape(x, s), _shape)
case("reshape", "method", lambda x: x.reshape(3, 8), lambda x: x.reshape(3, 8), (2, 3, 4))
case("reshape", "method-tuple", lambda x: x.reshape((4, -1)), lambda x: x.reshape((4, -1)),
     (2, 3, 4))

for _axes in [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)]:
    case("transpose", f"axes={_axes}", lambda x, a=_axes: ad.transpose(x, a),
         lambda x, a=_axes: np.transpose(x, a), (2, 3, 4))
case("transpose", "2d", ad.transpose, np.transpose, (2, 3))
case("transpose", "1d-int-axes", lambda x: ad.transpose(x, 0), lambda x: np.transpose(x, 0), (4,))
case("transpose", "list-axes", lambda x: ad.transpose(x, [-1, 0, 1]),
     lambda x: np.transpose(x, [-1, 0, 1]), (2, 3, 4))
case("transpose", "T", lambda x: x.T, lambda x: x.T, (2, 3))
case("transpose", "method", lambda x: x.transpose(2, 0, 1), lambda x: x.transpose(2, 0, 1),
     (2, 3, 4))

for _shape, _target in [((3,), (2, 3)), ((3, 1), (2, 3, 4)), ((), (2, 2)), ((1, 3), (4, 3)),
                        ((2, 3), (2, 3))]:
    case("broadcast_to", f"{_shape}->{_target}", lambda x, t=_target: ad.broadcast_to(x, t),
         lambda x, t=_target: np.broadcast_to(x, t), _shape)

_CONCAT_SHAPES = {0: [(1, 3, 2), (2, 3, 2), (3, 3, 2)], 1: [(2, 1, 2), (2, 3, 2), (2, 2, 2)],
                  2: [(2, 3, 1), (2, 3, 3), (2, 3, 2)], -1: [(2, 3, 2), (2, 3, 1), (2, 3, 2)]}
for _axis, _shapes in _CONCAT_SHAPES.items():
    case("concatenate", f"axis={_axis}",
         lambda *xs, a=_axis: ad.concatenate(xs, axis=a),
         lambda *xs, a=_axis: np.concatenate(xs, axis=a), *_shapes)
_CONSTANT_BLOCK = np.arange(6.0).reshape(2, 3)
case("concatenate", "with-constant",
     lambda x, y: ad.concatenate([x, _CONSTANT_BLOCK, y], axis=0),
     lambda x, y: np.concatenate([x, _CONSTANT_BLOCK, y], axis=0), (1, 3), (2, 3))
case("concatenate", "same-array-twice", lambda x: ad.concatenate([x, x], axis=1),
     lambda x: np.concatenate([x, x], axis=1), (2, 3))
# axis=None flattens every input, then joins them (numpy's rule), whatever their shapes
case("concatenate", "axis=None", lambda *xs: ad.concatenate(xs, axis=None),
     lambda *xs: np.concatenate(xs, axis=None), (2, 3), (4,), (1, 2, 2))
case("concatenate", "axis=None-0d", lambda x, y: ad.concatenate([x, y], axis=None),
     lambda x, y: np.concatenate([x, y], axis=None), (), (3,))
case("concatenate", "axis=None-with-constant",
     lambda x: ad.concatenate([_CONSTANT_BLOCK, x], axis=None),
     lambda x: np.concatenate([_CONSTANT_BLOCK, x], axis=None), (3, 2))
for _axis in [0, 1, 2, -1, -2]:
    case("stack", f"axis={_axis}", lambda *xs, a=_axis: ad.stack(xs, axis=a),
         lambda *xs, a=_axis: np.stack(xs, axis=a), (2, 3), (2, 3), (2, 3))
case("stack", "0d", lambda x, y: ad.stack([x, y]), lambda x, y: np.stack([x, y]), (), ())
case("expand_dims", "axis=1", lambda x: ad.expand_dims(x, 1),
     lambda x: np.expand_dims(x, 1), (2, 3))
case("expand_dims", "axis=-1", lambda x: ad.expand_dims(x, -1),
     lambda x: np.expand_dims(x, -1), (2, 3))
for _axis in [(0, 3), (-1, 1), [2, 0]]:
    case("expand_dims", f"axis={_axis}", lambda x, a=_axis: ad.expand_dims(x, a),
         lambda x, a=_axis: np.expand_dims(x, a), (2, 3))

_CONDITION = np.array([[True, False, True], [False, False, True]])
_CONDITION_COLUMN = np.array([[True], [False], [True]])
case("where", "same-shapes", lambda x, y: ad.where(_CONDITION, x, y),
     lambda x, y: np.where(_CONDITION, x, y), (2, 3), (2, 3))
case("where", "broadcast", lambda x, y: ad.where(_CONDITION_COLUMN, x, y),
     lambda x, y: np.where(_CONDITION_COLUMN, x, y), (1, 4), ())
case("where", "float-branch", lambda x: ad.where(_CONDITION, x, 0.25),
     lambda x: np.where(_CONDITION, x, 0.25), (2, 3))
case("where", "float-first-branch", lambda y: ad.where(_CONDITION, -1.0, y),
     lambda y: np.where(_CONDITION, -1.0, y), (3,))
case("where", "condition-from-comparison", lambda x: ad.where(x > 0, x * 2.0, -x),
     lambda x: np.where(x > 0, x * 2.0, -x), (2, 3), samplers=(away_from_zero,))

case("clip", "inside", lambda x: ad.clip(x, -1.0, 1.0), lambda x: np.clip(x, -1.0, 1.0),
     (3, 4), samplers=(inside,))
case("clip", "inside-and-outside", lambda x: ad.clip(x, -1.0, 1.0),
     lambda x: np.clip(x, -1.0, 1.0), (3, 4), samplers=(around,))
case("clip", "lower-only", lambda x: ad.clip(x, a_min=-1.0), lambda x: np.clip(x, -1.0, None),
     (3, 4), samplers=(around,))
case("clip", "upper-only", lambda x: ad.clip(x, a_max=1.0), lambda x: np.clip(x, None, 1.0),
     (3, 4), samplers=(around,))

INDICES = {
    "int": 1, "negative-int": -1, "two-ints": (1, 2), "slice": slice(1, 3),
    "negative-step": slice(None, None, -1), "negative-steps-2d": (slice(3, 0, -2), slice(None, None, -2)),
    "ellipsis-int": (Ellipsis, 1), "none": (None, slice(None), 2), "ellipsis-none": (Ellipsis, None),
    "int-array-repeats": [0, 0, 2, 3, 3, 3], "int-array-2d": np.array([[1, 1], [0, 3]]),
    "slice-and-int-array": (slice(None), [4, 4, 0]), "two-int-arrays": ([0, 1, 1], [2, 2, 3]),
    "boolean-mask": np.array([True, False, True, True]),
}
for _label, _index in INDICES.items():
    case("getitem", _label, lambda x, i=_index: x[i], lambda x, i=_index: x[i], (4, 5))
    case("getitem", f"{_label}-function", lambda x, i=_index: ad.getitem(x, i),
         lambda x, i=_index: x[i], (4, 5))
case("getitem", "3d-mixed", lambda x: x[..., 1:, None, ::-1], lambda x: x[..., 1:, None, ::-1],
     (2, 3, 4))

# --- helpers ----------------------------------------------------------------------------------

PRIMITIVE_CASES = [c for c in CASES if c.name in ad.OPS]


def projection(reference: np.ndarray) -> np.ndarray:
    """Fixed random weights of the output's shape: the cotangent fed to the VJP."""
    rng = np.random.default_rng(7)
    return np.asarray(rng.uniform(0.5, 1.5, np.shape(reference)) *
                      rng.choice([-1.0, 1.0], np.shape(reference)))


def projected(fn: Callable, weights: np.ndarray) -> Callable:
    def loss(*xs):
        return ad.sum(ad.multiply(fn(*xs), weights))
    loss.__name__ = "projected"
    return loss


# --- tests ------------------------------------------------------------------------------------


def public_composites() -> set[str]:
    """Functions defined in composites.py and exported at the top level."""
    return {name for name, f in vars(composites).items()
            if inspect.isfunction(f) and f.__module__ == composites.__name__
            and not name.startswith("_") and getattr(ad, name, None) is f}


COMPARISONS = {"less": np.less, "less_equal": np.less_equal, "greater": np.greater,
               "greater_equal": np.greater_equal, "equal": np.equal, "not_equal": np.not_equal}
OPERATOR_COMPARISONS = {"less": lambda x, y: x < y, "less_equal": lambda x, y: x <= y,
                        "greater": lambda x, y: x > y, "greater_equal": lambda x, y: x >= y,
                        "equal": lambda x, y: x == y, "not_equal": lambda x, y: x != y}
# Public functions that cannot be gradchecked against finite differences, with their own test.
SPECIAL = {"stop_gradient": "test_stop_gradient_blocks_the_gradient"}


def test_every_registered_op_has_a_case():
    covered = {c.name for c in CASES}
    differentiable = {name for name, op in ad.OPS.items() if op.differentiable}
    comparisons = {name for name, op in ad.OPS.items() if not op.differentiable}
    assert differentiable - covered == set(), "registered ops without a gradcheck case"
    assert comparisons - set(COMPARISONS) == set(), "comparison ops without a case"


def test_every_public_composite_has_a_case():
    composite_names = public_composites()
    assert {"square", "mean", "dot", "stack", "logsumexp", "softmax", "log_softmax"} <= composite_names
    missing = composite_names - {c.name for c in CASES} - set(SPECIAL)
    assert missing == set(), "public composites without a gradcheck case"


def test_every_case_names_a_known_op_or_public_function():
    for c in CASES:
        assert c.name in ad.OPS or c.name in public_composites(), c.id
    assert len({c.id for c in CASES}) == len(CASES), "duplicate case ids"


REQUESTED_PUBLIC = ("sin cos exp log tanh sigmoid relu sqrt square abs sum mean max maximum "
                    "minimum matmul dot reshape transpose broadcast_to concatenate stack where "
                    "clip logsumexp softmax log_softmax").split()


@pytest.mark.parametrize("name", REQUESTED_PUBLIC)
def test_public_function_is_exported_and_tested(name):
    assert callable(getattr(ad, name))
    assert any(c.name == name for c in CASES)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_forward_matches_numpy(c):
    xs = c.inputs()
    expected = c.reference(*xs)
    plain = c.fn(*xs)
    assert not isinstance(plain, Tracer)
    np.testing.assert_allclose(plain, expected, rtol=1e-12, atol=1e-12)
    assert np.shape(plain) == np.shape(expected)

    captured = {}
    weights = projection(expected)

    def loss(*args):
        out = c.fn(*args)
        captured["out"] = value_of(out)
        return ad.sum(ad.multiply(out, weights))

    value, gradients = ad.value_and_grad(loss, tuple(range(len(xs))))(*xs)
    traced = captured["out"]
    assert np.shape(traced) == np.shape(expected)
    np.testing.assert_allclose(traced, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, np.sum(expected * weights), rtol=1e-10, atol=1e-12)
    for x, g in zip(xs, gradients):
        assert isinstance(g, np.ndarray)
        assert g.shape == x.shape and g.dtype == np.float64


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_gradient_matches_finite_differences(c):
    xs = c.inputs()
    ad.check_grads(projected(c.fn, projection(c.reference(*xs))), *xs)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_float32_stays_float32(c):
    """Values follow numpy's dtype rules; gradients always have the argument's dtype."""
    xs = c.inputs(np.float32)
    expected = c.reference(*xs)
    weights = projection(expected).astype(np.result_type(expected))
    captured = {}

    def loss(*args):
        out = c.fn(*args)
        captured["out"] = value_of(out)
        return ad.sum(ad.multiply(out, weights))

    _, gradients = ad.value_and_grad(loss, tuple(range(len(xs))))(*xs)
    assert np.result_type(captured["out"]) == np.result_type(expected)
    np.testing.assert_allclose(captured["out"], expected, rtol=2e-5, atol=1e-5)
    for x, g in zip(xs, gradients):
        assert g.dtype == np.float32 and g.shape == x.shape


@pytest.mark.parametrize("c", PRIMITIVE_CASES, ids=lambda c: c.id)
def test_case_records_its_op(c):
    """A case exercises the op it is filed under (not, say, numpy behind a constant)."""
    graph = ad.trace(c.fn, *c.inputs())
    assert c.name in {v.op for v in graph.variables}


def test_float32_inputs_of_the_listed_functions_give_float32():
    x = np.linspace(0.5, 2.0, 6, dtype=np.float32).reshape(2, 3)
    for name in REQUESTED_PUBLIC:
        # functions that need more than one array get x twice
        fn = {"matmul": lambda a: ad.matmul(a, a.T), "dot": lambda a: ad.dot(a, a.T),
              "maximum": lambda a: ad.maximum(a, a * 0.5), "minimum": lambda a: ad.minimum(a, a * 0.5),
              "reshape": lambda a: ad.reshape(a, -1), "transpose": ad.transpose,
              "broadcast_to": lambda a: ad.broadcast_to(a, (4, 2, 3)),
              "concatenate": lambda a: ad.concatenate([a, a]), "stack": lambda a: ad.stack([a, a]),
              "where": lambda a: ad.where(_CONDITION, a, 0.5), "clip": lambda a: ad.clip(a, 0.0, 3.0),
              }.get(name, getattr(ad, name))
        value, g = ad.value_and_grad(lambda a: ad.sum(fn(a)))(x)
        assert value.dtype == np.float32, name
        assert g.dtype == np.float32, name


# --- comparisons (not differentiable) ---------------------------------------------------------

COMPARISON_SHAPES = [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((4,), (2, 3, 4)), ((), (2, 3))]


@pytest.mark.parametrize("shapes", COMPARISON_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_comparison_returns_plain_boolean_array(name, shapes):
    op = ad.OPS[name]
    assert not op.differentiable
    rng = np.random.default_rng(3)
    # a coarse grid makes ties (where equal/less_equal differ from less) likely
    x, y = (np.asarray(rng.integers(-2, 3, s)).astype(float) for s in shapes)
    expected = COMPARISONS[name](x, y)
    function = getattr(ad, name)
    seen = []

    def loss(a, b):
        for result in (function(a, b), OPERATOR_COMPARISONS[name](a, b),
                       function(a, y), function(x, b), OPERATOR_COMPARISONS[name](a, y)):
            seen.append(result)
        return ad.sum(a * b)

    ad.grad(loss, (0, 1))(x, y)
    seen.append(function(x, y))
    assert len(seen) == 6
    for result in seen:
        assert not isinstance(result, Tracer)
        assert np.result_type(result) == np.bool_
        np.testing.assert_array_equal(result, expected)


def test_comparison_with_a_constant_on_the_left_is_mirrored():
    x = np.array([-1.0, 0.0, 2.0])
    bound = np.array([0.0, 0.0, 0.0])
    results = []

    def f(a):
        results.extend([bound < a, 0.5 > a, bound == a])
        return ad.sum(a)

    ad.grad(f)(x)
    for result, expected in zip(results, [bound < x, 0.5 > x, bound == x]):
        assert not isinstance(result, Tracer)
        np.testing.assert_array_equal(result, expected)


def test_comparison_records_no_node():
    graph = ad.trace(lambda a: ad.sum(ad.where(a > 0, a, 0.0)), np.array([1.0, -1.0]))
    assert {v.op for v in graph.variables} == {None, "where", "sum"}


# --- special cases ----------------------------------------------------------------------------


def test_stop_gradient_blocks_the_gradient():
    x = np.array([0.5, -1.0, 2.0])
    g = ad.grad(lambda a: ad.sum(ad.stop_gradient(a) * a))(x)
    np.testing.assert_allclose(g, x)  # d/da of c * a with c = a held constant
    assert not isinstance(ad.stop_gradient(x), Tracer)


def test_getitem_repeated_indices_scatter_add():
    x = np.arange(5.0)
    g = ad.grad(lambda a: ad.sum(a[[0, 0, 3, 3, 3]]))(x)
    np.testing.assert_array_equal(g, [2.0, 0.0, 0.0, 3.0, 0.0])


def test_max_ties_share_the_gradient():
    g = ad.grad(lambda a: ad.max(a))(np.array([1.0, 3.0, 3.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5, 0.0])


def test_maximum_ties_split_the_gradient():
    x = np.array([1.0, 2.0])
    gx, gy = ad.grad(lambda a, b: ad.sum(ad.maximum(a, b)), (0, 1))(x, np.array([1.0, 0.0]))
    np.testing.assert_array_equal(gx, [0.5, 1.0])
    np.testing.assert_array_equal(gy, [0.5, 0.0])


def test_composites_leave_no_dead_nodes_on_the_tape():
    """Every recorded op feeds the output: a node nothing reads would keep residuals (memory
    counted by the checkpointing policies) for nothing."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    for fn in (ad.logsumexp, ad.softmax, ad.log_softmax, ad.mean, lambda a: ad.stack([a, a]),
               lambda a: ad.dot(a, a.T), ad.square):
        graph = ad.trace(lambda a: ad.sum(fn(a)), x)
        read = {i for v in graph.variables for i in v.inputs if i is not None}
        dead = [v for v in graph.variables
                if v.op is not None and v.index not in read and v.index != graph.output]
        assert dead == [], f"{fn}: {dead}"


# --- property: any pair of broadcastable shapes ------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       name=st.sampled_from(["add", "subtract", "multiply", "divide", "power", "maximum"]),
       seed=st.integers(0, 2 ** 16))
def test_binary_ops_on_any_broadcastable_shapes(shapes, name, seed):
    (sx, sy), out_shape = shapes.input_shapes, shapes.result_shape
    samplers = next(s for n, _, _, s in BINARY if n == name)
    rng = np.random.default_rng(seed)
    x, y = (sample(rng, shape) for sample, shape in zip(samplers, (sx, sy)))
    weights = rng.standard_normal(out_shape)
    function = getattr(ad, name)
    value, (gx, gy) = ad.value_and_grad(lambda a, b: ad.sum(function(a, b) * weights), (0, 1))(x, y)
    assert gx.shape == sx and gy.shape == sy
    np.testing.assert_allclose(value, np.sum(getattr(np, name)(x, y) * weights), rtol=1e-12,
                               atol=1e-12)
    ad.check_grads(lambda a, b: ad.sum(function(a, b) * weights), x, y)
