"""The closed forms of docs/cost_model.md, written independently of the planners, for the tests."""
from __future__ import annotations

import math


def beta(slots: int, repetitions: int) -> int:
    """beta(s, t) = C(s+t, s), 0 for a negative argument."""
    return 0 if slots < 0 or repetitions < 0 else math.comb(slots + repetitions, slots)


def griewank_advances(n: int, slots: int) -> int:
    """T_G(n, s) = r·n − beta(s+1, r−1), r the smallest r >= 0 with beta(s, r) >= n."""
    repetitions = 0
    while beta(slots, repetitions) < n:
        repetitions += 1
    return repetitions * n - beta(slots + 1, repetitions - 1)


def revolve_evals(n: int, slots: int) -> int:
    """Revolve's forward evaluations: T_G(n, s) + n."""
    return griewank_advances(n, slots) + n


def revolve_peak(n: int, slots: int) -> int:
    return 1 if n == 1 else min(slots, n - 1)


def expected_counts(policy: str, n: int, params: dict) -> tuple[int, int] | None:
    """(forward_evals, peak_stored) where docs/cost_model.md gives both, else None."""
    if policy == "store_all":
        return n, n
    if policy == "recompute_all":
        return n * (n + 1) // 2, 1
    if policy == "sqrt_n":
        k = min(params["segments"], n)
        return 2 * n, k + n // k - 1
    if policy == "revolve":
        return revolve_evals(n, params["slots"]), revolve_peak(n, params["slots"])
    return None
