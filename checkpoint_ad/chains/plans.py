"""Plans: what a storage policy decides, as immutable data that anyone can check.

Conventions: the tape model of docs/cost_model.md, which defines every count (forward
evaluations, forward cost, stored and ``peak_stored``); this docstring gives the vocabulary.

* **Chain.** ``x_0`` is the input; stage ``t`` (1..n) computes ``x_t = f_t(x_{t-1})``; the loss
  is computed from ``x_n``. The reverse sweep runs backward(n), backward(n-1), ..., backward(1).
* **Start.** ``x_0`` is stored in checkpoint slot 0 (it is never freed) and is the working value.
* **Actions** (``Step(action, stage, end)``; ``end == stage`` except for ADVANCE):

  ========  ===================================================================  =========
  action    meaning                                                              evals
  ========  ===================================================================  =========
  ADVANCE   plain evaluations of stages ``stage..end``: working ``x_{stage-1}``   end-stage+1
            becomes ``x_end``
  TAPE      taped evaluation of ``stage`` from working ``x_{stage-1}``; the tape  1
            is *held* (stored) until BACKWARD consumes it; working becomes
            ``x_stage``, which the held tape also keeps as a restart point
  TURN      taped evaluation of ``stage`` followed at once by backward(stage);    1
            the tape is transient (not stored); the working value is gone after
  BACKWARD  backward(stage) from its held tape, which it consumes; the working    0
            value is gone after
  SAVE      store the working value ``x_stage`` as a checkpoint                   0
  RESTORE   working value := ``x_stage``, from a checkpoint or a held tape        0
  FREE      drop checkpoint ``x_stage`` (never ``x_0``)                           0
  OFFLOAD   copy checkpoint ``x_stage`` or the held tape of ``stage`` to host     0
            memory; its device bytes are released when the step ends
  PREFETCH  copy it back from its host copy; readable once the step ends          0
  WAIT      end a step that holds transfers alone                                 0
  ========  ===================================================================  =========

Transfers, steps and their times: docs/offload_model.md, section "Chains". ADVANCE, TAPE, TURN,
BACKWARD and WAIT each end a step; the transfers listed before one run during it.

A plan is valid (:func:`check_plan`) when every stage is reversed exactly once, from n down to 1;
every step finds what it needs (the working value, a checkpoint, a held tape); nothing is used
after it was freed; no state is stored twice; no more than ``slots`` items are ever stored; and at
the end only ``x_0`` remains stored and no transfer is in flight.
"""
from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from ..plans.plan_json import (dump_plan, load_plan, mapping_field, read_field, reading,
                               steps_field, text_field)
from ..checks import whole_number
from ..errors import PlanError
from .actions import (ACTIONS as _ACTIONS, ADVANCE as _ADVANCE, BACKWARD as _BACKWARD,
                      CODE as _CODE, FREE as _FREE, OFFLOAD as _OFFLOAD,
                      PREFETCH as _PREFETCH, RESTORE as _RESTORE, SAVE as _SAVE, TAPE as _TAPE,
                      TURN as _TURN, WAIT as _WAIT, Action, Step)
from .checker import Counts, check_plan

__all__ = ["Action", "CHAIN_PLAN_FIELDS", "Counts", "Plan", "PlanBuilder", "Step", "check_plan"]


class PlanBuilder:
    """Accumulates steps compactly (three machine arrays), so that million-stage plans are cheap."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._actions = array("B")
        self._stages = array("q")
        self._ends = array("q")

    def add(self, action: Action, stage: int, end: int | None = None) -> None:
        """Append any step (``end`` defaults to ``stage``)."""
        self._append(_CODE[action], stage, stage if end is None else end)

    def _append(self, code: int, stage: int, end: int) -> None:
        self._actions.append(code)
        self._stages.append(stage)
        self._ends.append(end)

    def advance(self, first: int, last: int | None = None) -> None:
        """Plain evaluations of stages first..last (an empty range adds nothing)."""
        last = first if last is None else last
        if last >= first:
            self._append(_ADVANCE, first, last)

    def tape(self, stage: int) -> None:
        self._append(_TAPE, stage, stage)

    def turn(self, stage: int) -> None:
        self._append(_TURN, stage, stage)

    def backward(self, stage: int) -> None:
        self._append(_BACKWARD, stage, stage)

    def save(self, index: int) -> None:
        self._append(_SAVE, index, index)

    def restore(self, index: int) -> None:
        self._append(_RESTORE, index, index)

    def free(self, index: int) -> None:
        self._append(_FREE, index, index)

    def offload(self, index: int) -> None:
        self._append(_OFFLOAD, index, index)

    def prefetch(self, index: int) -> None:
        self._append(_PREFETCH, index, index)

    def wait(self, index: int) -> None:
        self._append(_WAIT, index, index)

    def build(self, policy: str, params: Mapping[str, object] | None = None,
              slots: int | None = None) -> Plan:
        return Plan(self.n, self._actions, self._stages, self._ends, policy,
                    tuple(sorted((params or {}).items())), slots)


@dataclass(frozen=True, eq=False)
class Plan:
    """An immutable schedule for an n-stage chain, made by ``policy`` with ``params``.

    ``slots`` is the storage limit the policy promised (checkpoints + held tapes, ``x_0``
    included), or None when it promised none. Iterating yields :class:`Step` objects.
    """

    n: int
    _actions: array = field(repr=False)
    _stages: array = field(repr=False)
    _ends: array = field(repr=False)
    policy: str = "custom"
    params: tuple[tuple[str, object], ...] = ()
    slots: int | None = None

    @classmethod
    def from_steps(cls, n: int, steps: Sequence[Step | tuple], policy: str = "custom",
                   slots: int | None = None, params: Mapping[str, object] | None = None) -> Plan:
        """A plan from explicit steps, e.g. one edited by hand (check it before running), made
        by ``policy`` with ``params`` and promising ``slots``."""
        builder = PlanBuilder(n)
        for number, step in enumerate(steps, 1):
            action, stage, *rest = step
            try:
                action = Action(action)
            except ValueError:
                names = ", ".join(a.value for a in Action)
                raise PlanError(f"step {number}: unknown action {action!r}; actions: {names}") \
                    from None
            builder.add(action, stage, rest[0] if rest else None)
        return builder.build(policy, params, slots)

    def to_json(self) -> str:
        """The plan as JSON text that :meth:`from_json` reads back: ``schema_version`` 1,
        ``family`` "chain", the policy and its params, n, slots, the counts :func:`check_plan`
        gives (forward evaluations and peak stored items; an invalid plan raises
        :class:`PlanError`) and the steps as ``[action, stage, end]``."""
        counts = self.counts
        return dump_plan("chain", {
            "policy": self.policy, "params": dict(self.params), "n": self.n,
            "slots": self.slots, "forward_evals": counts.forward_evals,
            "peak_stored": counts.peak_stored,
            "steps": [[_ACTIONS[code].value, stage, end]
                      for code, stage, end in zip(self._actions, self._stages, self._ends)]})

    @classmethod
    def from_json(cls, text: str | bytes) -> Plan:
        """The plan :meth:`to_json` wrote, checked by :func:`check_plan` (it is valid for any
        chain of its n stages) and its counts compared with those written. Malformed JSON,
        another family, another schema version, a bad field or step: :class:`PlanError`."""
        with reading("chain"):
            data = load_plan(text, "chain", CHAIN_PLAN_FIELDS)
            n = read_field(data, "n", whole_number, minimum=1)
            steps = [_json_step(number, step, n)
                     for number, step in enumerate(steps_field(data, "chain"), 1)]
            plan = cls.from_steps(n, steps, text_field(data, "policy"),
                                  read_field(data, "slots", whole_number, optional=True, minimum=1),
                                  mapping_field(data, "params"))
            written = Counts(read_field(data, "forward_evals", whole_number),
                             read_field(data, "peak_stored", whole_number))
            if plan.counts != written:
                raise PlanError(f"the plan reports (forward_evals, peak_stored) = "
                                f"{tuple(written)}, but its steps give {tuple(plan.counts)}")
        return plan

    def __iter__(self) -> Iterator[Step]:
        for code, stage, end in zip(self._actions, self._stages, self._ends):
            yield Step(_ACTIONS[code], stage, end)

    def __len__(self) -> int:
        return len(self._actions)

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self)

    @cached_property
    def counts(self) -> Counts:
        """The validated counts (raises :class:`PlanError` if the plan is invalid)."""
        return check_plan(self)

    @property
    def forward_evals(self) -> int:
        return self.counts.forward_evals

    @property
    def peak_stored(self) -> int:
        return self.counts.peak_stored

    def action_counts(self) -> dict[str, int]:
        """How many steps of each action, in the order of :class:`Action`, absent ones left out."""
        counted = Counter(self._actions)
        return {action.value: counted[code] for code, action in enumerate(_ACTIONS)
                if counted[code]}

    def headline(self) -> str:
        """The policy, its parameters, n, the steps, forward evaluations and peak stored."""
        params = ", ".join(f"{k}={v}" for k, v in self.params)
        return (f"plan {self.policy}({params}) for n={self.n}: {len(self)} steps, "
                f"{self.forward_evals} forward evaluations, peak_stored {self.peak_stored}")

    def lines(self) -> Iterator[str]:
        """One numbered step per line, produced as they are read (for million-step plans)."""
        width = len(str(len(self)))
        for number, step in enumerate(self, 1):
            yield f"{number:>{width}}  {step}"

    def describe(self) -> str:
        """A header line followed by one numbered step per line."""
        return "\n".join([self.headline(), *self.lines()])

    def __str__(self) -> str:
        return self.describe()


CHAIN_PLAN_FIELDS = ("policy", "params", "n", "slots", "forward_evals", "peak_stored", "steps")


def _json_step(number: int, step: list, n: int) -> tuple[str, int, int]:
    """A step of :meth:`Plan.from_json`, ``[action, stage, end]``, its indices whole numbers
    in 0..n (the action is checked by :meth:`Plan.from_steps`)."""
    action, stage, end = step
    for name, index in (("stage", stage), ("end", end)):
        whole_number(index, f"step {number}: {name}", error=PlanError)
        if index > n:
            raise PlanError(f"step {number}: {name} {index} is beyond the last stage, {n}")
    return action, stage, end


