import os
import tempfile
from pathlib import Path

import pytest

# Notebook runs under test (nbval) write their results to a scratch folder, never into book/results. Set at import
# time so that the kernels nbval starts inherit it.
os.environ.setdefault("WEIGHTSHARING_RESULTS", tempfile.mkdtemp(prefix="weightsharing-results-"))


@pytest.fixture(scope="session")
def mnist():
    from weightsharing import data

    return data.load("mnist")


@pytest.fixture
def results(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WEIGHTSHARING_RESULTS", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def built_book() -> Path:
    """The HTML book built once per session with `jupyter-book build -W` into _build/ (what `make book` makes)."""
    from weightsharing import cli, paths

    return cli.build(paths.repo_root())
