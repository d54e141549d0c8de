"""The chain plan vocabulary: the :class:`Action` enum and :class:`Step` (their meaning: the
docstring of :mod:`.plans`; transfers: docs/offload_model.md, section "Chains")."""
from __future__ import annotations

import enum
from typing import NamedTuple


class Action(enum.Enum):
    """The closed vocabulary of plan steps (see :mod:`.plans`)."""

    ADVANCE = "advance"
    TAPE = "tape"
    TURN = "turn"
    BACKWARD = "backward"
    SAVE = "save"
    RESTORE = "restore"
    FREE = "free"
    OFFLOAD = "offload"
    PREFETCH = "prefetch"
    WAIT = "wait"


ACTIONS = tuple(Action)
CODE = {action: code for code, action in enumerate(ACTIONS)}
(ADVANCE, TAPE, TURN, BACKWARD, SAVE, RESTORE, FREE, OFFLOAD, PREFETCH,
 WAIT) = (CODE[a] for a in ACTIONS)
#: the actions that end a step (docs/offload_model.md): transfers listed before one overlap it
STEP_ENDS = (Action.ADVANCE, Action.TAPE, Action.TURN, Action.BACKWARD, Action.WAIT)
STEP_END_NAMES = tuple(action.value for action in STEP_ENDS)
TRANSFERS = (Action.OFFLOAD, Action.PREFETCH)


class Step(NamedTuple):
    """One plan step; ``end`` differs from ``stage`` only for a run of advances."""

    action: Action
    stage: int
    end: int

    @property
    def evaluations(self) -> int:
        """Forward evaluations this step performs."""
        if self.action is Action.ADVANCE:
            return self.end - self.stage + 1
        return 1 if self.action in (Action.TAPE, Action.TURN) else 0

    def __str__(self) -> str:
        if self.action is Action.ADVANCE and self.end != self.stage:
            return f"advance {self.stage}..{self.end}"
        return f"{self.action.value} {self.stage}"
