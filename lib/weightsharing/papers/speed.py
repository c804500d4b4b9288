"""Every speed measurement of the book in one run: `python -m weightsharing.papers.speed`. The shared layers'
(`bench.main`), beta-lasso's step, and each chapter's models trained one seed alone against seeds stacked."""
from __future__ import annotations

import torch

from .. import bench
from .chang_arbnets import runs as chang
from .salimbeni_pairs import runs as salimbeni
from .neyshabur_betalasso import speed as neyshabur
from .zhang_locality import speed as zhang


def stack_cases() -> list[bench.StackCase]:
    return zhang.stack_cases() + salimbeni.stack_cases() + chang.stack_cases()


def main() -> None:
    bench.main()
    threads = torch.get_num_threads()
    print(f"BetaLasso against SGD (momentum 0.9, wd 5e-4) on S-FC, alpha = 8, batch 512 ({threads} threads)")
    for r in neyshabur.optimizer_steps():
        if r["optimizer"] != "SGD":
            print(f"  {r['what']:<15} {r['ms']:7.2f} ms  {r['ratio_to_sgd']:.2f}x SGD [{r['ratio_min']:.2f}-{r['ratio_max']:.2f}]")
    print(f"Training steps per second, one seed alone against R seeds stacked in one step ({threads} threads; "
          "* = stacked in the book)")
    for r in bench.stacked_training(stack_cases()):
        print(f"  {r['model']:<30} batch {r['batch']:>3}  R = {r['replicas']:>2}{'*' if r['stacked_in_book'] else ' '} "
              f"{r['single_steps_per_s']:7.0f} steps/s alone, {r['stacked_steps_per_s_per_seed']:7.0f} per seed stacked "
              f"({r['speedup']:.2f}x [{r['speedup_min']:.2f}-{r['speedup_max']:.2f}])")


if __name__ == "__main__":
    main()
