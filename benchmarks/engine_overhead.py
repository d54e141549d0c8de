"""Engine overhead on the Fig. 6.9 chain z = f(f(...f(w))), f = sin, measured side by side.

(a) a scalar chain, n = 2000: per-op overhead dominates;
(b) a vector of 1,000,000 elements, n = 64: memory-bound.

Each is timed for a hand-written numpy forward+backward (the floor), checkpoint_ad's
``grad``, and HIPS autograd when it is installed. Times are medians of repeats after a warm-up;
ratios are to the numpy floor, measured in the same run. Not a test: it asserts nothing.

    python benchmarks/engine_overhead.py [--repeats 7]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import checkpoint_ad as ca


def numpy_floor(w: np.ndarray, n: int) -> np.ndarray:
    """Forward storing every input, then backward g *= cos(x_t): the least any engine can do."""
    xs = []
    x = w
    for _ in range(n):
        xs.append(x)
        x = np.sin(x)
    g = np.ones_like(x)
    for x in reversed(xs):
        g = g * np.cos(x)
    return g


def engine_gradient(n: int) -> Callable[[np.ndarray], np.ndarray]:
    def chain(w):
        for _ in range(n):
            w = ca.sin(w)
        return ca.sum(w)
    return ca.grad(chain)


def autograd_gradient(n: int) -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        import autograd
        import autograd.numpy as anp
    except ImportError:
        return None

    def chain(w):
        for _ in range(n):
            w = anp.sin(w)
        return anp.sum(w)
    return autograd.grad(chain)


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(label: str, w: np.ndarray, n: int, repeats: int) -> list[tuple[str, str, float, float]]:
    floor_gradient = numpy_floor(w, n)
    candidates = {"numpy (hand-written)": lambda: numpy_floor(w, n),
                  "checkpoint_ad": lambda: engine_gradient(n)(w)}
    other = autograd_gradient(n)
    if other is not None:
        candidates["HIPS autograd"] = lambda: other(w)
    assert np.allclose(engine_gradient(n)(w), floor_gradient)
    times = {name: median_seconds(f, repeats) for name, f in candidates.items()}
    floor = times["numpy (hand-written)"]
    return [(label, name, seconds, seconds / floor) for name, seconds in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = measure("(a) scalar, n=2000", np.array(0.5), 2000, args.repeats)
    rows += measure("(b) 1e6 vector, n=64", np.linspace(-1, 1, 1_000_000), 64, args.repeats)
    print(f"{'case':<22} {'implementation':<22} {'median s':>10} {'x numpy':>8}")
    for label, name, seconds, ratio in rows:
        print(f"{label:<22} {name:<22} {seconds:>10.4f} {ratio:>8.2f}")
    by = {(label, name): ratio for label, name, _, ratio in rows}
    if ("(a) scalar, n=2000", "HIPS autograd") in by:
        print(f"\nscalar chain: checkpoint_ad / autograd = "
              f"{by[('(a) scalar, n=2000', 'checkpoint_ad')] / by[('(a) scalar, n=2000', 'HIPS autograd')]:.2f}")


if __name__ == "__main__":
    main()
