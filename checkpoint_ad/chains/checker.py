"""The chain plan checker: :func:`check_plan` replays a plan's steps on the checker's view of a
run (what is stored on the device and on the host, the working value, the next stage to
reverse) and names the first step that breaks a rule (:mod:`.plans`; transfers:
docs/offload_model.md, section "Chains")."""
from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import PlanError
from .actions import ACTIONS as _ACTIONS, ADVANCE as _ADVANCE, STEP_ENDS, TAPE as _TAPE
from .actions import TURN as _TURN, Step

_ENDS = frozenset(_ACTIONS.index(action) for action in STEP_ENDS)


class Counts(NamedTuple):
    """What :func:`check_plan` counts: forward evaluations and peak stored items."""

    forward_evals: int
    peak_stored: int


class _PlanState:
    """The checker's view of a run: what is stored, what the working value is, what is next.

    Each action's method applies the step and returns None, or returns why it is invalid
    (messages are built only then: the checker runs over million-step plans).
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.checkpoints = {0}
        self.held_tapes: set[int] = set()
        self.working: int | None = 0
        self.next_reverse = n
        self.host: dict[int, bool] = {}  # stage -> whether its host copy is a held tape's
        self.leaving: set[int] = set()  # offloaded in the open step
        self.arriving: set[int] = set()  # prefetched in the open step

    def end_step(self) -> None:
        """The open step ends: offloaded items leave the device, prefetched ones arrive."""
        for stage in self.leaving:
            self.checkpoints.discard(stage)
            self.held_tapes.discard(stage)
        for stage in self.arriving:
            (self.held_tapes if self.host[stage] else self.checkpoints).add(stage)
        self.leaving.clear()
        self.arriving.clear()

    @property
    def stored(self) -> int:
        return len(self.checkpoints) + len(self.held_tapes) + len(self.arriving)

    def _moving(self, stage: int) -> str | None:
        if stage in self.arriving:
            return f"x_{stage} is still arriving (it can be read once its step ends)"
        if stage in self.leaving:
            return f"x_{stage} is leaving for the host in this step"
        return None

    def _working_name(self) -> str:
        return "gone" if self.working is None else f"x_{self.working}"

    def _evaluation_error(self, stage: int, end: int) -> str | None:
        if stage < 1:
            return "there is no stage 0"
        if self.working != stage - 1:
            return f"needs the working value x_{stage - 1}, but it is {self._working_name()}"
        if end > self.next_reverse:
            return (f"evaluates past stage {self.next_reverse}, whose successors are already "
                    "reversed")
        return None

    def _reverse(self, stage: int) -> str | None:
        if stage != self.next_reverse:
            return f"reverses stage {stage}, but the next stage to reverse is {self.next_reverse}"
        self.next_reverse -= 1
        self.working = None
        return None

    def advance(self, stage: int, end: int) -> str | None:
        error = self._evaluation_error(stage, end)
        if error is None:
            self.working = end
        return error

    def tape(self, stage: int, end: int) -> str | None:
        error = self._evaluation_error(stage, end)
        if error is None and stage in self.held_tapes:
            error = "this tape is already held"
        if error is None:
            self.held_tapes.add(stage)
            self.working = stage
        return error

    def turn(self, stage: int, end: int) -> str | None:
        return self._evaluation_error(stage, end) or self._reverse(stage)

    def backward(self, stage: int, end: int) -> str | None:
        if stage not in self.held_tapes:
            return self._moving(stage) or "no held tape of this stage"
        if stage in self.leaving:
            return self._moving(stage)
        error = self._reverse(stage)
        if error is None:
            self.held_tapes.discard(stage)
        return error

    def save(self, stage: int, end: int) -> str | None:
        if self.working != stage:
            return f"the working value is {self._working_name()}"
        if stage in self.checkpoints or stage in self.held_tapes:
            return "this state is already stored"
        if stage >= self.next_reverse:
            return "saves a state that is never used again"
        self.checkpoints.add(stage)
        return None

    def restore(self, stage: int, end: int) -> str | None:
        if stage in self.arriving:
            return self._moving(stage)
        if stage not in self.checkpoints and stage not in self.held_tapes:
            return "this state is not stored (never saved, or already freed)"
        self.working = stage
        return None

    def free(self, stage: int, end: int) -> str | None:
        if stage == 0:
            return "x_0 is never freed"
        if stage not in self.checkpoints:
            return self._moving(stage) or "this checkpoint is not stored"
        if stage in self.leaving:
            return self._moving(stage)
        self.checkpoints.discard(stage)
        return None

    def offload(self, stage: int, end: int) -> str | None:
        if stage == 0:
            return "x_0 stays on the device"
        if stage == self.n:  # only its tape can be stored: x_n is never saved
            return (f"stage {stage}'s tape stays on the device: the forward sweep returns "
                    f"x_{stage} from it")
        if stage not in self.checkpoints and stage not in self.held_tapes:
            return self._moving(stage) or "no checkpoint or held tape of this stage is on the device"
        if stage in self.leaving:
            return self._moving(stage)
        self.host[stage] = stage in self.held_tapes
        self.leaving.add(stage)
        return None

    def prefetch(self, stage: int, end: int) -> str | None:
        if stage not in self.host:
            return "no host copy of this stage (never offloaded)"
        if stage in self.checkpoints or stage in self.held_tapes or stage in self.arriving:
            return "this state is already on the device"
        self.arriving.add(stage)
        return None

    def wait(self, stage: int, end: int) -> str | None:
        if stage not in self.leaving and stage not in self.arriving:
            return "nothing of this stage is transferred in this step"
        return None


_METHODS = tuple(getattr(_PlanState, action.value) for action in _ACTIONS)


def check_plan(plan: Any, slots: int | None = None) -> Counts:
    """Validate ``plan`` (a :class:`~.plans.Plan`) step by step and return its counts.

    Raises :class:`PlanError` naming the first step that breaks an invariant. ``slots``
    (default: the plan's own promise) bounds the stored items at every moment.
    """
    limit = plan.slots if slots is None else slots
    if limit is not None and limit < 1:
        raise PlanError(f"a plan needs at least 1 slot (x_0 is always stored), got {limit}")
    state = _PlanState(plan.n)
    evaluations, peak, n = 0, state.stored, plan.n
    rows = zip(plan._actions, plan._stages, plan._ends)
    for number, (code, stage, end) in enumerate(rows, 1):
        error = None
        if not (0 <= stage <= end <= n) or (code != _ADVANCE and end != stage):
            error = f"index out of range 0..{n}"
        if error is None:
            error = _METHODS[code](state, stage, end)
        if error is not None:
            raise PlanError(f"step {number} ({Step(_ACTIONS[code], stage, end)}): {error}")
        if code == _ADVANCE:
            evaluations += end - stage + 1
        elif code == _TAPE or code == _TURN:
            evaluations += 1
        stored = state.stored
        if code in _ENDS and (state.leaving or state.arriving):
            state.end_step()
        if stored > peak:
            peak = stored
            if limit is not None and stored > limit:
                raise PlanError(f"step {number} ({Step(_ACTIONS[code], stage, end)}): {stored} "
                                f"items stored, more than the {limit} slots allowed")
    if state.leaving or state.arriving:
        moving = sorted(state.leaving | state.arriving)
        raise PlanError(f"the plan ends with transfers in flight: {moving} (end their step "
                        f"with wait)")
    if state.next_reverse != 0:
        raise PlanError(f"the plan ends before stage {state.next_reverse} is reversed")
    leftovers = sorted(state.checkpoints - {0}) + sorted(state.held_tapes)
    if leftovers:
        raise PlanError(f"the plan ends with states still stored: {leftovers}")
    return Counts(evaluations, peak)
