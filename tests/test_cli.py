import subprocess
import sys


from weightsharing import cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "weightsharing", *args], capture_output=True, text=True)


def test_unknown_slug_is_one_line_naming_the_choices():
    done = run("run", "resnet", "--budget", "smoke")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "unknown notebook 'resnet'" in done.stderr and "salimbeni_pairs" in done.stderr
    planned = run("run", "rao_divergence", "--budget", "smoke")
    assert planned.returncode == 2 and "planned but has no chapter yet" in planned.stderr


def test_unknown_budget_is_one_line_naming_the_choices():
    done = run("run", "salimbeni_pairs", "--budget", "huge")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "choose one of smoke, cpu, paper" in done.stderr


def test_status_without_results_says_what_to_do(results):
    done = subprocess.run([sys.executable, "-m", "weightsharing", "status"], capture_output=True, text=True)
    assert done.returncode == 0 and "make book" in done.stdout


def test_toc_lists_the_notebooks_in_book_order():
    names = cli.toc_notebooks(cli.runs.repo_root())
    assert names == ["zhang_locality", "salimbeni_pairs", "chang_arbnets", "synthesis", "status"]
