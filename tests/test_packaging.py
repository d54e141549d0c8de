"""The wheel ships every package: pyproject.toml lists each one that exists on disk."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_package_on_disk() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    on_disk = set(find_packages(ROOT, include=["checkpoint_ad", "checkpoint_ad.*"]))
    assert on_disk | {"checkpoint_ad.experiments"} == listed


def test_every_listed_package_imports() -> None:
    """Each listed package imports; the mapped ``checkpoint_ad.experiments`` exists only once
    installed, so from a bare checkout its folder is checked instead."""
    import importlib
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    for name in listed:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError:
            assert name == "checkpoint_ad.experiments", name
            assert (ROOT / "experiments" / "__init__.py").is_file()


def test_importing_the_package_and_running_a_chain_imports_no_heavy_library() -> None:
    """torch is an optional extra; scipy, OR-Tools, networkx and matplotlib take about a second
    each to import and only some planners and the reports need them: every worker process of
    an experiment and every command starts without them."""
    script = ("import sys, numpy as np, checkpoint_ad as ca\n"
              "ca.backprop([ca.Stage(lambda x, p: ca.tanh(x))] * 3, np.ones(4), policy='sqrt_n')\n"
              "heavy = ('torch', 'scipy', 'ortools', 'networkx', 'matplotlib')\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
