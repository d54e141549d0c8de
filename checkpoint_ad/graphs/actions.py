"""The graph plan vocabulary: :class:`GraphAction` and :class:`GraphStep` (their rules: the
docstring of :mod:`.plans` and docs/graph_model.md; transfers: docs/offload_model.md)."""
from __future__ import annotations

import enum
from typing import NamedTuple


class GraphAction(enum.Enum):
    COMPUTE = "compute"
    FREE = "free"
    BACKWARD = "backward"
    OFFLOAD = "offload"    # device -> host copy (docs/offload_model.md)
    PREFETCH = "prefetch"  # host -> device copy
    WAIT = "wait"          # ends a step that holds transfers alone


class GraphStep(NamedTuple):
    action: GraphAction
    node: int

    def __str__(self) -> str:
        return f"{self.action.value} v{self.node}"


TRANSFER_ACTIONS = (GraphAction.OFFLOAD, GraphAction.PREFETCH)
