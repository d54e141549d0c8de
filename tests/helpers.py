"""Small helpers shared by several test files (independent of the code under test)."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import checkpoint_ad

from checkpoint_ad.chains.plans import Action, Plan

REPO = Path(checkpoint_ad.__file__).resolve().parent.parent
WAIT_S = 120  # seconds a command run by a test may take before the test fails

TINY_EXPERIMENT = """\
workload = "chain"
repeats = 1
sizes = { width = 40 }
grid = { n = [3, 5] }
policies = [{ policy = "store_all" }, { policy = "revolve", params = { slots = 2 } }]
"""


def stored_after_each_step(plan: Plan) -> Iterator[tuple[set[int], set[int]]]:
    """The stored checkpoints and held tapes after every step, walked apart from the checker."""
    checkpoints, held = {0}, set()
    for step in plan:
        if step.action is Action.SAVE:
            checkpoints.add(step.stage)
        elif step.action is Action.FREE:
            checkpoints.discard(step.stage)
        elif step.action is Action.TAPE:
            held.add(step.stage)
        elif step.action is Action.BACKWARD:
            held.discard(step.stage)
        yield checkpoints, held


def stored_bytes_peak(plan, profile) -> int:
    """The most bytes of checkpoints and held tapes at once, each buffer once (an oracle apart
    from the executor): a held tape of stage t holds x_t, its private residuals, and x_{t-1}
    when it keeps its input."""
    sizes = (profile.input_bytes,) + tuple(s.state_bytes for s in profile.stages)
    peak = 0
    for checkpoints, held in stored_after_each_step(plan):
        buffers = {("x", j): sizes[j] for j in checkpoints}
        for t in held:
            stage = profile.stages[t - 1]
            buffers[("x", t)] = sizes[t]
            buffers[("private", t)] = stage.private_tape_bytes
            if stage.keeps_input:
                buffers[("x", t - 1)] = sizes[t - 1]
        peak = max(peak, sum(buffers.values()))
    return peak


def run_cli(cwd: Path, *argv: str | bytes) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    return subprocess.run([sys.executable, "-m", "checkpoint_ad", *argv], cwd=cwd, env=env,
                          capture_output=True, timeout=WAIT_S, check=False)


def snapshot(root: Path) -> dict[bytes, bytes | None]:
    """Every file (its bytes) and folder (None) under ``root``, by path in bytes."""
    found: dict[bytes, bytes | None] = {}
    for folder, folders, files in os.walk(os.fsencode(root)):
        for name in folders:
            found[os.path.join(folder, name)] = None
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                found[os.path.join(folder, name)] = handle.read()
    return found


def draw_small(figure, path) -> None:
    """``save_png`` at a tenth of the pixels and without the palette pass: every artist is still
    drawn (a bad value fails there) and the file is a real PNG."""
    figure.savefig(path, format="png", dpi=12)
