"""What transfers between device and host memory mean in a plan of either family
(docs/offload_model.md), the parts that the replays, the executors and the planners share: the
bandwidth, how actions group into steps, when host copies are dropped, and the time of a step.
Each family names the actions that end its steps (graphs: :data:`STEP_ENDS`; chains: theirs).

Units: bytes for sizes, **cost units** for times, bytes per cost unit for ``bandwidth``.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from ..checks import real_number, whole_number
from ..errors import PlanError

#: the actions that end a graph plan's step (by value: this module sits below the plans' enums)
STEP_ENDS = ("compute", "backward", "wait")
TRANSFERS = ("offload", "prefetch")


def bandwidth_value(bandwidth: object, what: str, error: type[Exception] = PlanError
                    ) -> float | None:
    """``bandwidth`` in bytes per cost unit: None or 0 (no offload) as None, else a finite
    number > 0 as a float; anything else raises ``error`` naming ``what``."""
    if bandwidth is None:
        return None
    value = real_number(bandwidth, f"{what}: bandwidth (bytes per cost unit)", positive=False,
                        error=error)
    return value or None


def host_budget_value(host_budget_bytes: object, what: str,
                      error: type[Exception] = PlanError) -> float:
    """``host_budget_bytes``: a whole number of bytes >= 0 as itself, None (no host budget)
    as infinity; anything else raises ``error`` naming ``what``."""
    if host_budget_bytes is None:
        return math.inf
    return whole_number(host_budget_bytes, f"{what}: host_budget_bytes", error=error,
                        noun="whole number of bytes")


def check_host_budget(host_peak_bytes: int, params: Mapping[str, object], label: str) -> None:
    """Raise :class:`PlanError` when the plan ``label``, of these ``params``, holds more host
    bytes at once than its ``host_budget_bytes`` (docs/offload_model.md)."""
    limit = params.get("host_budget_bytes")
    if limit is not None and host_peak_bytes > host_budget_value(limit, f"plan {label}"):
        raise PlanError(f"plan {label} holds {host_peak_bytes} bytes in host memory at once, "
                        f"above its host_budget_bytes={limit}")


def step_time(action_time: float, offloaded: int, prefetched: int,
              bandwidth: float | None) -> float:
    """The time of one step (cost units): its action's time, or the longer of its two
    transfers (``offloaded`` and ``prefetched`` bytes, one channel per direction) if longer."""
    if not (offloaded or prefetched):
        return action_time
    if bandwidth is None:
        raise PlanError("a step holds transfers but no bandwidth was given")
    return max(action_time, offloaded / bandwidth, prefetched / bandwidth)


def step_ends(steps: Sequence[tuple[object, int]],
              enders: Iterable[str] = STEP_ENDS) -> list[int]:
    """For each action of ``steps`` (pairs of an action and a node), the position of the action
    that ends its step (the position past the end when no action ends it: a transfer in
    flight when the plan ends); ``enders`` names the actions that end a step."""
    enders = frozenset(enders)
    ends = [len(steps)] * len(steps)
    end = len(steps)
    for position in reversed(range(len(steps))):
        if _name(steps[position][0]) in enders:
            end = position
        ends[position] = end
    return ends


def host_drops(steps: Sequence[tuple[object, int]],
               enders: Iterable[str] = STEP_ENDS) -> dict[int, list[int]]:
    """When host copies are dropped: the position of a step-ending action -> the nodes whose
    host copy is dropped as that step ends. A copy made by ``offload i`` lives until the step
    of the last ``prefetch i`` before i is offloaded again (or the plan ends); with no such
    prefetch, until the end of the offload's own step."""
    ends = step_ends(steps, enders)
    last_read: dict[int, int] = {}  # node -> end of the last step that could read its copy
    drops: dict[int, list[int]] = {}
    for position, (action, node) in enumerate(steps):
        name = _name(action)
        if name == "offload":
            _drop(drops, last_read, node)
            last_read[node] = ends[position]
        elif name == "prefetch" and node in last_read:
            last_read[node] = ends[position]
    for node in list(last_read):
        _drop(drops, last_read, node)
    return drops


def _drop(drops: dict[int, list[int]], last_read: dict[int, int], node: int) -> None:
    if node in last_read:
        drops.setdefault(last_read.pop(node), []).append(node)


def transferred_bytes(sizes: Sequence[int], nodes: Iterable[int]) -> int:
    """Bytes of the values ``nodes``."""
    return sum(sizes[node] for node in nodes)


def _name(action: object) -> str:
    """The name of an action (an enum member's value, or a plain string)."""
    return getattr(action, "value", action)  # type: ignore[return-value]
