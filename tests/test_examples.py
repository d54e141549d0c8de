"""Every ```python block of README.md and of docs/*.md runs, so that no example goes stale.

Sybil parses each document; its blocks run in order in one namespace (a page reads as one
session: a later block uses what an earlier one defined). A block written as a doctest session
(``>>>`` lines and their output) has its printed output compared; the other blocks check their
numbers with ``assert`` lines. Shell commands and program output are fenced as bash or text and
do not run. One test per document, so that pytest-xdist spreads the documents over workers.
"""
from __future__ import annotations

import doctest
import importlib.util
import re
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_FENCE = re.compile(r"^```python[ \t]*$", re.MULTILINE)
SYBIL = Sybil(parsers=[PythonCodeBlockParser(
    doctest_optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)])


def test_the_readme_and_the_pages_have_python_examples():
    with_examples = [path.name for path in DOCUMENTS
                     if PYTHON_FENCE.search(path.read_text(encoding="utf-8"))]
    assert {"README.md", "index.md", "chains.md", "graphs.md"} <= set(with_examples)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_python_block_runs(path: Path, tmp_path: Path, monkeypatch, request) -> None:
    text = path.read_text(encoding="utf-8")
    if "import torch" in text:
        if importlib.util.find_spec("torch") is None:
            pytest.skip("the page's examples need torch (the torch extra)")
        import torch
        # One thread: beside the other test workers on two cores, torch's thread pool
        # contends with them (a 32x256 tanh took 15 ms) and the page took 15 s instead of 4.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        request.addfinalizer(lambda: torch.set_num_threads(threads))
    examples = list(SYBIL.parse(path))
    # Each fence yields at least one example (a doctest block one per prompt): a fence the
    # parser did not see would otherwise pass unnoticed.
    assert len(examples) >= len(PYTHON_FENCE.findall(text))
    monkeypatch.chdir(tmp_path)  # whatever an example writes lands in a throw-away folder
    for example in examples:
        example.evaluate()
