"""The committed book: sources stripped, executed notebooks and summaries in the format DESIGN.md fixes, and a
warning-free jupyter-book build."""
import json

import pytest

from weightsharing import cli, paths, verdicts

ROOT = paths.repo_root()
CHAPTERS = cli.toc_notebooks(ROOT)


@pytest.mark.parametrize("name", CHAPTERS)
def test_source_notebooks_carry_no_outputs(name):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c["outputs"] or c["execution_count"] for c in code)
    assert any("parameters" in c["metadata"].get("tags", []) for c in code)


@pytest.mark.parametrize("name", CHAPTERS)
def test_parameters_are_annotated_for_papermill(name):
    import papermill

    params = papermill.inspect_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"))
    assert set(params) == {"budget", "device", "fresh"}
    assert {p["inferred_type_name"] for p in params.values()} <= {"str", "bool"} and all(p["help"] for p in params.values())


@pytest.mark.parametrize("name", CHAPTERS)
def test_book_notebooks_were_executed_by_papermill_at_cpu(name):
    nb = json.loads((ROOT / "book" / f"{name}.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"]["budget"] == "cpu"
    assert nb["metadata"]["papermill"]["exception"] in (None, False)


@pytest.mark.parametrize("name", [n for n in CHAPTERS if n not in cli.AUXILIARY])
def test_committed_summary_has_the_designed_format(name):
    s = json.loads((ROOT / "book" / "results" / name / "cpu" / "summary.json").read_text())
    assert {"slug", "budget", "git_sha", "finished_at", "wall_seconds", "device", "torch_version", "claims_sha",
            "claims", "tables"} <= set(s)
    assert s["slug"] == name and s["budget"] == "cpu" and s["claims"]
    fields = {"id", "claim", "by", "verdict", "leaning", "evidence", "test", "n_runs", "regime", "cells", "first_unit",
              "newest_unit", "fragile", "runs_left_out", "decided_by", "rule_changed_after_results", "rule_changed_at",
              "earlier_rule", "earlier_verdict", "phase", "frozen_at", "seeds", "exploratory_verdict",
              "exploratory_seeds", "data_first_seen", "would_decide"}
    assert all(set(c) == fields and c["verdict"] in verdicts.VERDICTS for c in s["claims"])
    assert all(c["verdict"] in ("not assessed", "not run") or c["n_runs"] is None or c["n_runs"] >= verdicts.MIN_RUNS
               for c in s["claims"])
    # decided or inconclusive only in a passed regime, or a null one that says why
    for c in s["claims"]:
        if c["verdict"] in ("holds", "contradicted", "inconclusive"):
            assert c["regime"] and (c["regime"]["passed"] is True or c["regime"].get("null_because")), c["id"]
        if c["verdict"] not in verdicts.DECIDED:
            assert c["would_decide"] and c["would_decide"]["run"], c["id"]
        assert c["phase"] in ("exploratory", "confirmatory") and (c["phase"] == "exploratory" or c["frozen_at"])
    assert all(c["fragile"] in (True, False, None) and (c["fragile"] is True) == bool(c["decided_by"])
               for c in s["claims"])
    assert set(s["trained"]) == {"commits", "from", "to"} and sum(s["trained"]["commits"].values()) == s["units"]
    rows = [r for table in s["tables"].values() for r in table if r.get("paper") is not None]
    assert rows and all({"ours", "ours_std", "n_seeds"} <= set(r) for r in rows)
    lines = (ROOT / "book" / "results" / name / "cpu" / "runs.jsonl").read_text().splitlines()
    assert len(lines) == s["units"]


@pytest.mark.slow
def test_book_builds_without_warnings(built_book):
    assert built_book.exists()
    for name in CHAPTERS:
        assert (built_book.parent / "book" / f"{name}.html").exists()
    assert (built_book.parent / "_static" / "mathjax" / "tex-chtml.js").exists()  # maths served by the book itself


def test_committed_results_are_strict_json_that_any_reader_loads():
    """No NaN or Infinity (Python's json writes them; a browser's JSON.parse refuses them)."""
    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    results = paths.repo_root() / "book" / "results"
    files = sorted([*results.glob("*/cpu/runs.jsonl"), *results.glob("*/cpu/summary.json")])
    assert len(files) >= 10  # runs.jsonl and summary.json of the five chapters
    for path in files:
        text = path.read_text()
        docs = text.splitlines() if path.suffix == ".jsonl" else [text]
        for doc in docs:
            json.loads(doc, parse_constant=refuse)


@pytest.mark.parametrize("name", [n for n in CHAPTERS if n not in cli.AUXILIARY])
def test_each_chapter_puts_its_own_models_on_the_synthesis_ladder(name):
    from importlib import import_module

    from weightsharing import synthesis

    tables = json.loads((ROOT / "book" / "results" / name / "cpu" / "summary.json").read_text())["tables"]
    rows = import_module(f"weightsharing.papers.{name}.analysis").ladder_rows(tables)
    assert rows and rows == tables["ladder"]  # what the page reads is what the chapter's module computes
    assert {r["rung"] for r in rows} <= set(synthesis.RUNGS) and all(0 <= r["accuracy"] <= 100 for r in rows)
