"""What a chain policy may know of a chain: the cost of each stage's evaluation and the bytes of
each state and held tape (docs/cost_model.md), checked at construction, never arrays."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..checks import finite_total, flag, real_number, sequence, whole_number
from ..errors import PlanError
from ..plans import limits


@dataclass(frozen=True)
class ChainCosts:
    """What a policy may know of a chain: costs and sizes, never arrays.

    ``compute[t-1]`` is the cost ``u_t`` of one evaluation of stage t (arbitrary units, 1 by
    default); ``state_bytes[j]`` is the size ``a_j`` of ``x_j`` (j = 0..n); ``tape_bytes[t-1]``
    is the size ``b_t`` of stage t's held tape, the restart point ``x_t`` included, and
    ``tape_input_bytes[t-1]`` the part of it that is the stage's input ``x_{t-1}`` (0 unless the
    tape keeps its input, whose memory it then shares with a stored ``x_{t-1}``).

    ``backward_costs[t-1]`` is the time of stage t's backward step in the same units, by
    default ``2 * compute[t-1]`` (a VJP does about twice a stage's work); only the time of a
    plan with transfers reads it (docs/chain_offload.md).

    Two more facts serve the whole activation peak (:mod:`..replay`, what ``budget_bytes``
    bounds): ``tape_keeps_output[t-1]`` says whether stage t's tape keeps its output ``x_t``
    among its residuals (then a turn's transient tape holds it too; default False), and
    ``returns_output`` whether the chain's output ``x_n`` is returned before its cotangent is
    known (a chain inside a larger differentiated function, a torch module): stage n's tape is
    then held, not turned (:func:`..replay.hold_last_tape`).
    """

    n: int
    compute: tuple[float, ...] = ()
    state_bytes: tuple[int, ...] = ()
    tape_bytes: tuple[int, ...] = ()
    tape_input_bytes: tuple[int, ...] = ()
    tape_keeps_output: tuple[bool, ...] = ()
    returns_output: bool = False
    backward_costs: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        n = whole_number(self.n, "ChainCosts.n (the number of stages)", minimum=1, error=PlanError)
        object.__setattr__(self, "n", n)
        defaults = {"compute": (1.0, n), "state_bytes": (1, n + 1),
                    "tape_bytes": (1, n), "tape_input_bytes": (0, n)}
        given = {name: sequence(getattr(self, name), f"ChainCosts.{name}", error=PlanError)
                 for name in defaults}
        missing = [name for name in defaults if not given[name]]
        _require_memory(n, limits.COST_BYTES_PER_STAGE // len(defaults) * len(missing))
        for name, (fill, length) in defaults.items():
            entries = given[name]
            if entries:
                sequence(entries, f"ChainCosts.{name}", length=length, error=PlanError)
            object.__setattr__(self, name, _checked_entries(name, entries) if entries
                               else (fill,) * length)
        object.__setattr__(self, "tape_keeps_output", _keeps_output(n, self.tape_keeps_output))
        object.__setattr__(self, "returns_output",
                           flag(self.returns_output, "ChainCosts.returns_output", error=PlanError))
        backward = sequence(self.backward_costs, "ChainCosts.backward_costs", error=PlanError)
        if backward:
            sequence(backward, "ChainCosts.backward_costs", length=n, error=PlanError)
            backward = _checked_entries("compute", backward, "backward_costs")
        object.__setattr__(self, "backward_costs",
                           backward or tuple(2 * u for u in self.compute))

    @classmethod
    def unit(cls, n: int) -> ChainCosts:
        """A homogeneous chain: unit costs, every state and held tape one slot."""
        return cls(n)

    @property
    def homogeneous(self) -> bool:
        return (len(set(self.compute)) == 1 and len(set(self.state_bytes)) == 1
                and len(set(self.tape_bytes)) == 1)


def _require_memory(n: int, bytes_per_stage: int) -> None:
    """Refuse a chain whose default costs alone would exceed the planner memory limit."""
    limit = limits.current()
    if bytes_per_stage * (n + 1) > limit.memory_bytes:
        largest = limit.memory_bytes // bytes_per_stage - 1
        raise PlanError(f"a chain of n={n:,} stages needs about {bytes_per_stage * (n + 1):,} "
                        f"bytes for its costs alone, more than the planner memory limit of "
                        f"{limit.memory_bytes:,} bytes ({limit.source}); the largest n that "
                        f"fits is {largest:,}")
def _keeps_output(n: int, given: object) -> tuple[bool, ...]:
    """``tape_keeps_output`` as n booleans (all False when empty); else :class:`PlanError`."""
    what = "ChainCosts.tape_keeps_output"
    keeps = sequence(given, what, error=PlanError)
    if not keeps:
        return (False,) * n
    sequence(keeps, what, length=n, error=PlanError)
    if all(type(keep) is bool for keep in keeps):
        return keeps
    return tuple(flag(keep, f"{what}[{index}]", error=PlanError)
                 for index, keep in enumerate(keeps))


def _checked_entries(name: str, values: tuple, label: str = "compute") -> tuple:
    """Costs as finite floats >= 0, sizes as integers >= 0 (bytes); else :class:`PlanError`.

    Plain Python floats (costs) or ints (sizes) are checked in bulk (million-stage chains);
    anything else entry by entry, which also names the first bad entry."""
    if name == "compute":
        if all(type(v) is float for v in values) and min(values) >= 0 and math.isfinite(sum(values)):
            return values
        checked = tuple(real_number(value, f"ChainCosts.{label}[{index}] (the cost of stage "
                                           f"{index + 1})", positive=False, error=PlanError)
                        for index, value in enumerate(values))
        finite_total(checked, f"ChainCosts.{label}", error=PlanError)
        return checked
    if all(type(v) is int for v in values) and min(values) >= 0:
        return values
    return tuple(whole_number(value, f"ChainCosts.{name}[{index}] (bytes)", error=PlanError)
                 for index, value in enumerate(values))
