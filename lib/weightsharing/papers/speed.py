"""`make bench`: every speed measurement of the book in one run, written to results/benchmarks.json
(`measurements`), which the chapters and the appendix page read. `python -m weightsharing.papers.speed [--quick]`.

What it times: each chapter's own cases (`<paper>.benchmarks`: its layers against their baselines, its training steps,
bf16 against fp32), and for the whole book the locally connected layers before and after the unfold backend and each
small model's seeds alone against stacked. `--quick` runs every case once (seconds per case; for tests), never for the
committed file.
"""
from __future__ import annotations

import argparse
import time

from .. import bench, measurements
from ..provenance import git_sha
from . import IMPLEMENTED, paper
from .chang_arbnets import runs as chang
from .salimbeni_pairs import runs as salimbeni
from .zhang_locality import speed as zhang


def stack_cases() -> list[bench.StackCase]:
    return zhang.stack_cases() + salimbeni.stack_cases() + chang.stack_cases()


def measure(*, quick: bool = False, log=print) -> dict[str, dict[str, list[dict]]]:
    sections = {}
    start = time.perf_counter()
    sections["book"] = {"lc_speedups": bench.lc_speedups(rounds=1 if quick else 15),
                        "stacked_training": bench.stacked_training(stack_cases(), rounds=1 if quick else 7,
                                                                   steps=2 if quick else 40)}
    log(f"book: shared layers and stacked seeds ({time.perf_counter() - start:.0f} s)")
    for slug in IMPLEMENTED:
        start = time.perf_counter()
        sections[slug] = {**paper(slug).benchmarks(quick=quick),
                          "precision": bench.precision_speedups(paper(slug).precision_cases(), rounds=1 if quick else 7)}
        log(f"{slug}: {', '.join(sections[slug])} ({time.perf_counter() - start:.0f} s)")
    return sections


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m weightsharing.papers.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round of every case (a check, not a measurement)")
    args = parser.parse_args(argv)
    commit = git_sha()  # the code that is timed, before any edit made while it runs
    sections = measure(quick=args.quick)
    path = measurements.write(sections, quick=args.quick, commit=commit)
    print(f"wrote {path.name}: {measurements.provenance_line()}")
    for tables in sections.values():
        for row in tables.get("precision", []):
            print(f"  {row['model']:<28} batch {row['batch']:>3}: bf16 {row['speedup']:.2f}x fp32 per step "
                  f"[{row['speedup_min']:.2f}-{row['speedup_max']:.2f}]")


if __name__ == "__main__":
    main()
