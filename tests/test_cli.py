import subprocess
import sys


from weightsharing import cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "weightsharing", *args], capture_output=True, text=True)


def test_unknown_slug_is_one_line_naming_the_choices():
    done = run("run", "resnet", "--budget", "smoke")
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


def test_unknown_budget_is_one_line_naming_the_choices():
    done = run("run", "salimbeni_pairs", "--budget", "huge")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "choose one of smoke, cpu, paper" in done.stderr


def test_status_without_results_says_what_to_do(results):
    done = subprocess.run([sys.executable, "-m", "weightsharing", "status"], capture_output=True, text=True)
    assert done.returncode == 0 and "make book" in done.stdout


def test_toc_lists_the_notebooks_in_book_order():
    names = cli.toc_notebooks(cli.runs.repo_root())
    assert names == ["zhang_locality", "rao_divergence", "salimbeni_pairs", "chang_arbnets", "neyshabur_betalasso", "synthesis", "status"]
