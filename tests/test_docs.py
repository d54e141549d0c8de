"""The counting rules live in the repository (docs/cost_model.md, docs/graph_model.md): nothing
cites a document outside it, every docs/*.md that a file cites exists, and the numbers the two
documents give are the numbers the planners produce."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from checkpoint_ad import plan_graph
from checkpoint_ad.chains.costs import ChainCosts
from checkpoint_ad.chains.policies import make_plan
from checkpoint_ad.chains.policies.optimal import optimal_cost
from closed_forms import griewank_advances, revolve_evals
from graph_families import GROUND_TRUTH

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OUTSIDE = re.compile(rb"(COST|GRAPH)_MODEL\.md")
CITED = re.compile(r"docs/[\w.-]+\.md")
SKIPPED_DIRECTORIES = {"__pycache__", "build", "dist", "site"}  # site: the built documentation


def repository_files() -> Iterator[Path]:
    """Every file of the checkout but version control, caches and build output."""
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if any(p.startswith(".") or p in SKIPPED_DIRECTORIES or p.endswith(".egg-info")
               for p in parts):
            continue
        if path.is_file():
            yield path


def test_no_file_cites_a_document_outside_the_repository():
    offenders = [f"{path.relative_to(ROOT)}:{line}"
                 for path in repository_files()
                 for line, text in enumerate(path.read_bytes().splitlines(), 1)
                 if OUTSIDE.search(text)]
    assert offenders == [], "cite docs/cost_model.md or docs/graph_model.md instead"


def test_every_cited_document_exists():
    cited = {}
    for path in repository_files():
        if path.suffix in {".py", ".md", ".toml"}:
            for name in CITED.findall(path.read_text(encoding="utf-8")):
                cited.setdefault(name, str(path.relative_to(ROOT)))
    assert {"docs/cost_model.md", "docs/graph_model.md", "docs/errors.md"} <= set(cited)
    missing = {name: where for name, where in cited.items() if not (ROOT / name).is_file()}
    assert missing == {}


def test_links_between_the_documents_resolve():
    for document in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", document.read_text(encoding="utf-8")):
            assert (document.parent / target).is_file(), (document.name, target)


def test_the_readme_links_resolve():
    """The README is the door: each page, report and figure it links to is in the checkout."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)
               if ":" not in target}
    assert {"docs/index.md", "reports/fig69/report.md"} <= targets
    missing = sorted(target for target in targets if target and not (ROOT / target).exists())
    assert missing == []


def table_rows(document: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table rows of ``document`` whose first cell starts so."""
    rows = []
    for line in (DOCS / document).read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].startswith(first_cell):
            rows.append(cells)
    return rows


def test_the_homogeneous_table_of_cost_model_is_what_the_planners_give():
    [header] = table_rows("cost_model.md", "n, s")
    [revolve] = table_rows("cost_model.md", "revolve (T_G + n)")
    [optimal] = table_rows("cost_model.md", "optimal with held tapes")
    pairs = [tuple(int(v) for v in cell.split(",")) for cell in header[1:]]
    assert len(pairs) == 8
    for (n, slots), revolve_count, optimal_count in zip(pairs, revolve[1:], optimal[1:]):
        unit = ChainCosts.unit(n)
        assert int(revolve_count) == revolve_evals(n, slots) == make_plan(
            "revolve", unit, slots=slots).forward_evals
        assert int(optimal_count) == optimal_cost(unit, slots=slots)
        assert optimal_cost(unit, slots=slots, tapes=False) == revolve_evals(n, slots)


def test_the_worked_examples_of_cost_model_hold():
    text = (DOCS / "cost_model.md").read_text(encoding="utf-8")
    examples = re.findall(r"T_G\((\d+), (\d+)\) = (\d+)", text)
    assert len(examples) == 3
    for n, slots, advances in examples:
        assert griewank_advances(int(n), int(slots)) == int(advances)
    assert "For n = 100 and k = 10 that is 200 evaluations and a peak\nof 19 stored" in text
    plan = make_plan("sqrt_n", ChainCosts.unit(100), segments=10)
    assert (plan.forward_evals, plan.peak_stored) == (200, 19)


@pytest.mark.parametrize("name", GROUND_TRUTH)
def test_the_ground_truth_table_of_graph_model_is_the_tested_one(name):
    [row] = table_rows("graph_model.md", name)
    costs, store_all, recompute_all, least = GROUND_TRUTH[name]
    assert int(row[1]) == len(costs.op_nodes)
    assert tuple(int(v) for v in row[2].split(",")) == store_all
    assert tuple(int(v) for v in row[3].split(",")) == recompute_all
    budgets = dict(map(int, re.sub(r"^B=", "", item).split(": ")) for item in row[4].split(" · "))
    assert budgets == least
    assert plan_graph("store_all", costs).forward_evals == store_all[0]


def test_the_experiment_file_shown_is_the_shipped_one():
    [shown] = re.findall(r"```toml\n(.*?)```", (DOCS / "cli.md").read_text(encoding="utf-8"), re.S)
    assert shown == (ROOT / "experiments" / "fig69.toml").read_text(encoding="utf-8")
