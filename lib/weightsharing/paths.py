"""Where things live: the checkout, the results root (WEIGHTSHARING_RESULTS overrides it), and paths as a reader
of the book should see them."""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The checkout this package is installed from (editable install), else the working directory."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "_toc.yml").exists() else Path.cwd()


def results_root() -> Path:
    root = os.environ.get("WEIGHTSHARING_RESULTS")
    return Path(root) if root else repo_root() / "book" / "results"


def shown(path: Path) -> str:
    """A path as a reader of the book should see it: relative to the checkout, never this machine's folders."""
    try:
        return str(Path(path).resolve().relative_to(repo_root()))
    except ValueError:
        return Path(path).name


def results_dir(slug: str, budget: str) -> Path:
    return results_root() / slug / budget
