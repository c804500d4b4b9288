import subprocess
import sys
from types import SimpleNamespace

import pytest

from weightsharing import cli


@pytest.fixture
def run(capsys):
    """The CLI in this process (`cli.main`), as a subprocess would report it: return code, stdout, stderr."""
    def call(*args):
        capsys.readouterr()
        code = cli.main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
    return call


def test_the_module_entry_point_reports_a_bad_input_in_one_line():
    """The one subprocess case: `python -m weightsharing` itself, exit code and stderr as a shell sees them."""
    done = subprocess.run([sys.executable, "-m", "weightsharing", "run", "resnet", "--budget", "smoke"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unknown notebook 'resnet'" in done.stderr and "salimbeni_pairs" in done.stderr


def test_a_planned_chapter_without_a_module_says_so(monkeypatch):
    from weightsharing import papers
    from weightsharing.errors import UserError

    monkeypatch.setattr(papers, "IMPLEMENTED", tuple(s for s in papers.IMPLEMENTED if s != "rao_divergence"))
    try:
        papers.paper("rao_divergence")
    except UserError as e:
        assert "planned but has no chapter yet" in str(e)
    else:
        raise AssertionError("no error for a planned chapter")


def test_status_without_results_says_what_to_do(results, run):
    done = run("status")
    assert done.returncode == 0 and "make book" in done.stdout


def test_toc_lists_the_notebooks_in_book_order():
    names = cli.toc_notebooks(cli.repo_root())
    assert names == ["synthesis", "zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets",
                     "neyshabur_betalasso", "status", "performance"]  # the synthesis is the front door; `book` runs it after the chapters


# Every bad input of the README's "When an argument is wrong" list: one line on stderr, exit 2, nothing written.
BAD_INPUTS = {
    "unknown chapter": (["run", "resnet"], "unknown notebook 'resnet'"),
    "unknown budget": (["run", "zhang_locality", "--budget", "huge"], "choose one of smoke, cpu, paper"),
    "CUDA on a machine without it": (["run", "zhang_locality", "--device", "cuda"], "not available on this machine"),
    "not a device": (["run", "zhang_locality", "--device", "gpu"], "is not a torch device"),
    "bad shard": (["run", "zhang_locality", "--shard", "3/2"], "is not I/N"),
    "fresh with shard": (["book", "--fresh", "--shard", "1/2"], "cannot be combined"),
    "shard of a page that trains nothing": (["run", "synthesis", "--shard", "1/2"], "trains nothing"),
    "plan of an unknown budget": (["plan", "chang_arbnets", "--budget", "huge"], "choose one of smoke, cpu, paper"),
    "book with an unknown budget": (["book", "--budget", "huge"], "unknown budget"),
}


def snapshot(*folders):
    return {p: p.stat().st_mtime_ns for f in folders if f.exists() for p in f.rglob("*")}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_each_bad_input_is_one_line_exit_2_and_writes_nothing(case, results, run):
    args, words = BAD_INPUTS[case]
    book = cli.repo_root() / "book"
    before = snapshot(results, book)
    done = run(*args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and words in done.stderr
    assert snapshot(results, book) == before


def test_an_unwritable_results_folder_is_one_line_before_any_kernel(tmp_path, monkeypatch, run):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # results under a regular file cannot be made, whoever runs the test (root included)
    monkeypatch.setenv("WEIGHTSHARING_RESULTS", str(blocker / "results"))
    done = run("run", "salimbeni_pairs", "--budget", "smoke")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot write results under" in done.stderr
    assert "WEIGHTSHARING_RESULTS" in done.stderr and "==" not in done.stdout  # no notebook was started


def test_a_damaged_data_file_stops_the_run_before_any_kernel(tmp_path, monkeypatch, run):
    (tmp_path / "mnist.npz").write_bytes(b"truncated")
    monkeypatch.setenv("WEIGHTSHARING_DATA", str(tmp_path))
    done = run("run", "salimbeni_pairs", "--budget", "smoke")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "mnist.npz: not a readable .npz" in done.stderr and "materialize.py" in done.stderr and "==" not in done.stdout


def test_readme_lists_every_bad_input_the_tests_run():
    readme = (cli.repo_root() / "README.md").read_text()
    for args, words in BAD_INPUTS.values():
        assert " ".join(args) in readme and words in readme


@pytest.mark.parametrize("slug", ["zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets",
                                  "neyshabur_betalasso"])
def test_plan_lists_units_stored_and_an_estimate_at_paper(slug, results, run):
    done = run("plan", slug, "--budget", "paper")
    assert done.returncode == 0, done.stderr
    head, *rows = done.stdout.splitlines()
    assert head.startswith(f"{slug} at budget 'paper':") and "0 already stored" in head
    assert any(r.startswith("to train") for r in rows) and "estimate, not a measurement" in rows[-1]
    assert "NVIDIA A100" in rows[-1]
