"""The package's layers, read from the source: a base floor that imports nothing internal, a core that imports no
paper, and the papers on top. Only the drivers (the CLI, the notebook helper, the speed report) reach the papers."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "weightsharing"
BASE = ("layers", "optim", "train", "metrics", "tables", "plotting", "errors")
DRIVERS = ("cli", "chapter", "__main__")


def imports_of(source: str, parts: tuple[str, ...]) -> set[str]:
    """The package modules a module at `parts` (its path under weightsharing, e.g. ("papers", "speed")) imports, as
    top-level names under weightsharing ("runs", "papers", ...), lazy imports inside functions included."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            target = [*parts[:len(parts) - node.level], *(node.module.split(".") if node.module else [])]
            found.update([target[0]] if target else [alias.name for alias in node.names])  # `from . import a, b`
    return found - {parts[0]} if len(parts) == 1 else found


def internal_imports(path: Path) -> set[str]:
    return imports_of(path.read_text(), path.relative_to(PACKAGE).with_suffix("").parts)


CORE = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in DRIVERS)


@pytest.mark.parametrize("module", BASE)
def test_the_base_floor_imports_nothing_internal(module):
    assert internal_imports(PACKAGE / f"{module}.py") <= {"errors"} - {module}


@pytest.mark.parametrize("module", CORE)
def test_no_core_module_imports_a_paper(module):
    assert "papers" not in internal_imports(PACKAGE / f"{module}.py")


def test_the_checker_sees_an_upward_import_even_inside_a_function():
    assert imports_of("def f():\n    from .papers import zhang_locality\n", ("bench",)) == {"papers"}
    assert imports_of("from . import runs, tables\nfrom .layers import X\n", ("synthesis",)) == {"runs", "tables", "layers"}
    assert imports_of("from ...bench import interleaved\n", ("papers", "zhang_locality", "speed")) == {"bench"}


@pytest.mark.parametrize("slug", ["zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets",
                                  "neyshabur_betalasso"])
def test_every_paper_offers_the_drivers_one_interface(slug):
    import inspect

    from weightsharing.papers import Paper, paper

    module = paper(slug)
    assert isinstance(module, Paper) and module.SLUG == slug and set(module.BUDGETS) == {"smoke", "cpu", "paper"}
    assert list(inspect.signature(module.train).parameters) == ["ctx"]
    assert list(inspect.signature(module.run).parameters) == ["ctx"]
    assert list(inspect.signature(module.planned).parameters)[:2] == ["budget", "store"]


def test_a_module_missing_part_of_the_interface_is_not_a_paper():
    from types import SimpleNamespace

    from weightsharing.papers import Paper

    parts = dict(SLUG="x", REVISION=1, DATA=(), BUDGETS={}, train=lambda ctx: None, run=lambda ctx: None,
                 planned=lambda *a: [], benchmarks=lambda quick=False: {},
                 precision_cases=lambda: [])
    assert isinstance(SimpleNamespace(**parts), Paper)
    assert not isinstance(SimpleNamespace(**{k: v for k, v in parts.items() if k != "run"}), Paper)


@pytest.mark.slow
def test_every_papers_benchmarks_run_quickly_and_give_a_precision_decision_per_model(tmp_path, monkeypatch):
    """`make bench --quick` end to end into a scratch results folder: every chapter's tables, each precision row with
    the chapter's decision, and the chapter pages then read them back."""
    from weightsharing import measurements
    from weightsharing.papers import IMPLEMENTED, speed

    monkeypatch.setenv("WEIGHTSHARING_RESULTS", str(tmp_path))
    speed.main(["--quick"])
    doc = measurements.read()
    assert doc["quick"] and set(doc["sections"]) == {"book", *IMPLEMENTED}
    for slug in IMPLEMENTED:
        rows = doc["sections"][slug]["precision"]
        assert rows and all(r["decision"] in ("fp32", "bf16") and r["speedup"] > 0 for r in rows)
    assert len(measurements.tables("neyshabur_betalasso")["lc_benchmark"])
    assert "quick" in measurements.provenance_line()
