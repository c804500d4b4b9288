"""`python -m weightsharing run SLUG --budget B [--fresh] [--shard I/N]`, `... book`, `... html`, `... plan SLUG`,
`... status`, `... merge DIR...`.

`run` executes notebooks/SLUG.ipynb with papermill into book/SLUG.ipynb; `book` does that for every notebook
in _toc.yml, then builds the HTML with `jupyter-book build . -W`; `html` builds only the HTML; `plan` lists what a run would train and what it
would cost; `status` prints what each summary says. With `--shard I/N`, `run` and `book` only train this shard's
units (no notebook, no build): after every shard has finished, a plain `run` or `book` reuses them all and writes
the chapters. Every argument is checked before anything starts or is written.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from . import data
from .context import BUDGET_NAMES, RunContext, check_device, resolve_budget
from .errors import UserError
from .papers import IMPLEMENTED, paper
from .paths import repo_root, results_dir, results_root, shown
from .store import Store, merge_stores, parse_shard
from .summary import read_summaries

AUXILIARY = ("synthesis", "status", "performance")  # notebooks that read the papers' summaries rather than train anything


def toc_notebooks(root: Path) -> list[str]:
    """Notebook names in _toc.yml order whose source exists in notebooks/."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(Path(node["file"]).stem)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [f for f in files if (root / "notebooks" / f"{f}.ipynb").exists()]


def check(slug: str, budget: str, *, device: str = "cpu", shard: tuple[int, int] | None = None,
          fresh: bool = False, writes: bool = True, checked: set | None = None) -> None:
    """Every argument of a command, before a kernel starts or a file is written; each failure is one UserError.
    `checked` collects the data files already validated, so a book run reads each one once."""
    if slug not in AUXILIARY:
        resolve_budget(paper(slug).BUDGETS, budget, slug)
    elif budget not in BUDGET_NAMES:
        raise UserError(f"unknown budget {budget!r}: choose one of {', '.join(BUDGET_NAMES)}")
    if fresh and shard is not None:
        raise UserError("--fresh cannot be combined with --shard (each shard would discard the others' units): "
                        f"delete book/results/{slug}/{budget}/runs.jsonl once, then run the shards")
    check_device(device)
    if slug not in AUXILIARY:
        checked = set() if checked is None else checked
        for name in paper(slug).DATA:  # a damaged file fails here in one line, not in a kernel's cell
            path = data.data_root() / f"{name}.npz"
            if name not in checked and path.exists():
                data.read_validated(name, path)
            checked.add(name)
    if writes:
        writable(results_dir(slug, budget) if slug not in AUXILIARY else results_root())


def writable(folder: Path) -> None:
    """`folder` exists or can be made, and a file can be written in it (tried, then removed)."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    probe = existing / f".weightsharing-write-test.{os.getpid()}" if existing is not None else None
    try:
        if probe is None or not existing.is_dir():
            raise OSError
        probe.write_text("")
        probe.unlink()
    except OSError:
        raise UserError(f"cannot write results under {existing or folder}: make it writable or point "
                        "WEIGHTSHARING_RESULTS at a folder you can write") from None


def execute(name: str, budget: str, *, fresh: bool, device: str, root: Path) -> float:
    import papermill

    source, target = root / "notebooks" / f"{name}.ipynb", root / "book" / f"{name}.ipynb"
    writable(target.parent)
    print(f"== {name}: budget {budget}{', fresh' if fresh else ''} -> {target.relative_to(root)}", flush=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(source, target, parameters={"budget": budget, "fresh": fresh, "device": device},
                                   cwd=str(root / "notebooks"), log_output=True, progress_bar=False,
                                   kernel_name="python3")
    except papermill.PapermillExecutionError as e:
        raise UserError(f"{name} failed in cell {e.exec_count}: {e.ename}: {e.evalue.splitlines()[0] if e.evalue else ''}"
                        f" (the executed notebook with the traceback is {target})") from None
    tidy_executed(target)
    seconds = time.perf_counter() - start
    print(f"== {name}: done in {seconds:.0f} s", flush=True)
    return seconds


def tidy_executed(path: Path) -> None:
    """Fold the cell papermill inserts (the resolved parameters also print in the setup cell) behind a toggle, and
    record papermill's input and output paths relative to the checkout (not this machine's folders)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for k in ("input_path", "output_path"):
        if meta.get(k):
            meta[k] = shown(Path(meta[k]))
    # a page that shows no code (its own parameters cell removed) loses the injected one too
    removed = any("parameters" in c.metadata.get("tags", []) and "remove-cell" in c.metadata.get("tags", [])
                  for c in nb.cells)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        fold = "remove-cell" if removed else "hide-input"
        if "injected-parameters" in tags and fold not in tags:
            tags.append(fold)
    nbformat.write(nb, path)


def train_shard(slug: str, budget: str, shard: tuple[int, int], device: str) -> None:
    """This shard's units of one chapter, trained through the shared store without a notebook."""
    module = paper(slug)
    ctx = RunContext.open(module, budget, device=device, shard=shard)
    i, n = shard
    print(f"== {slug}: budget {budget}, shard {i}/{n}", flush=True)
    start = time.perf_counter()
    module.train(ctx)
    print(f"== {slug}: shard {i}/{n} done in {time.perf_counter() - start:.0f} s: {ctx.store.computed} units trained, "
          f"{ctx.store.reused} reused; run it without --shard once every shard has finished", flush=True)


def cmd_run(args, root: Path) -> None:
    if args.slug not in AUXILIARY:
        paper(args.slug)
    shard = parse_shard(args.shard)
    check(args.slug, args.budget, device=args.device, shard=shard, fresh=args.fresh)
    if shard is not None:
        if args.slug in AUXILIARY:
            raise UserError(f"{args.slug} trains nothing, so it has no shards: run it without --shard")
        train_shard(args.slug, args.budget, shard, args.device)
        return
    execute(args.slug, args.budget, fresh=args.fresh, device=args.device, root=root)


def cmd_book(args, root: Path) -> None:
    shard = parse_shard(args.shard)
    names, checked = toc_notebooks(root), set()
    for name in names:
        check(name, args.budget, device=args.device, shard=shard, fresh=args.fresh, checked=checked)
    if shard is not None:
        for name in names:
            if name not in AUXILIARY:
                train_shard(name, args.budget, shard, args.device)
        return
    # the chapters first, then the pages that read their summaries (the synthesis is first in the table of contents)
    for name in sorted(names, key=lambda n: n in AUXILIARY):
        execute(name, args.budget, fresh=args.fresh and name not in AUXILIARY, device=args.device, root=root)
    build(root)


def cmd_plan(args, root: Path) -> None:
    from . import planning

    slugs = [args.slug] if args.slug else [n for n in toc_notebooks(root) if n not in AUXILIARY]
    checked = set()
    for slug in slugs:
        if slug in AUXILIARY:
            raise UserError(f"{slug} trains nothing: plan one of {', '.join(IMPLEMENTED)}")
        check(slug, args.budget, writes=False, checked=checked)
    for i, slug in enumerate(slugs):
        module = paper(slug)
        path = results_dir(slug, args.budget) / "runs.jsonl"
        store = Store(path, log=lambda s: None, strict=args.budget != "smoke") if path.exists() else None
        print(("\n" if i else "") + planning.report(slug, args.budget, module.planned(module.BUDGETS[args.budget], store)))


def build(root: Path, out: Path | None = None) -> Path:
    # the jupyter-book next to this interpreter, so the build uses the pinned environment whatever PATH says
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "-W", "--keep-going"]
    if out is not None:
        command += ["--path-output", str(out)]
    done = subprocess.run(command, cwd=root)
    index = (out or root) / "_build" / "html" / "index.html"
    if done.returncode != 0 or not index.exists():
        raise UserError("jupyter-book build failed (warnings count as errors); see the messages above")
    print(f"book: {index}")
    return index


def cmd_status(args, root: Path) -> None:
    summaries = read_summaries(args.budget)
    if not summaries:
        print("no summaries yet: run `make book` or `python -m weightsharing run SLUG --budget cpu`")
        return
    print(f"{'notebook':<22} {'budget':<6} {'units':>5} {'computed':>8} {'reused':>6} {'compute s':>9} "
          f"{'device':<6} {'finished (UTC)':<25} {'git'}")
    for s in summaries:
        print(f"{s['slug']:<22} {s['budget']:<6} {s['units']:>5} {s['units_computed']:>8} {s['units_reused']:>6} "
              f"{s['compute_seconds']:>9.0f} {s['device']:<6} {s['finished_at']:<25} {s['git_sha']}")
        for c in s["claims"]:
            fragility = {True: "fragile", False: "robust"}.get(c.get("fragile"), "")
            print(f"    {c['id']:<4} {c['verdict']:<14} {fragility:<8} {c['claim']}")


def cmd_merge(args, root: Path) -> None:
    into = results_root()
    report = merge_stores([Path(d) for d in args.dirs], into)
    conflicts = 0
    for store, r in report.items():
        print(f"{store:<28} {r['records']:>6} records ({r['added']} added), {len(r['conflicts'])} conflicting")
        for k in r["conflicts"][:5]:
            print(f"    conflict, first record kept: {k[:120]}")
        conflicts += len(r["conflicts"])
    if conflicts:
        raise UserError(f"{conflicts} key(s) have records that disagree beyond provenance: the first of each was kept; "
                        "a unit that is not a deterministic function of its key, or shards run from different code")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m weightsharing", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="execute one notebook into book/")
    p_run.add_argument("slug")
    p_book = sub.add_parser("book", help="execute every notebook of _toc.yml, then build the HTML")
    for p in (p_run, p_book):
        p.add_argument("--budget", default="cpu", help="smoke | cpu | paper (default: cpu)")
        p.add_argument("--fresh", action="store_true", help="recompute every unit instead of reusing runs.jsonl")
        p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
        p.add_argument("--shard", default=None, metavar="I/N",
                       help="train only shard I of N (units split by a stable hash of their keys); no notebook, no build")
    p_plan = sub.add_parser("plan", help="list the units a run would train, how many are stored, and their cost")
    p_plan.add_argument("slug", nargs="?", default=None, help="one chapter (default: every chapter)")
    p_plan.add_argument("--budget", default="cpu", help="smoke | cpu | paper (default: cpu)")
    p_status = sub.add_parser("status", help="print what each notebook's summary.json says")
    p_status.add_argument("--budget", default=None)
    sub.add_parser("html", help="build the HTML from the executed notebooks in book/ (executes and trains nothing)")
    p_merge = sub.add_parser("merge", help="take the union of results stores (e.g. the shards' artifacts) into book/results")
    p_merge.add_argument("dirs", nargs="+", metavar="DIR", help="results roots holding <slug>/<budget>/runs.jsonl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # papermill streams the notebooks' output here
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    root = repo_root()
    try:
        {"run": cmd_run, "book": cmd_book, "plan": cmd_plan, "status": cmd_status, "merge": cmd_merge,
         "html": lambda args, root: build(root)}[args.command](args, root)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
