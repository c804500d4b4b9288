"""One trainer over whole-dataset tensors: batches are index slices, no DataLoader, one history row per epoch."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Batch = tuple[torch.Tensor, ...]


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
        data: Batch, *, epochs: int, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
        evaluate: Callable[[nn.Module], dict] | None = None, scheduler=None,
        log: Callable[[str], None] | None = None) -> list[dict]:
    """Train for `epochs` passes over `data` (tensors sharing their first axis); return one row per epoch.

    Without `shuffle` the batch order is the same every epoch (rows 0..B-1, B..2B-1, ...), as some papers did.
    `evaluate(model)` runs after every epoch under no_grad in eval mode and its dict joins the row.
    """
    n = len(data[0])
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss = loss_fn(model, tuple(t[idx] for t in data))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
            count += len(idx)
        row = {"epoch": epoch, "train_loss": total / count, "lr": optimizer.param_groups[0]["lr"]}
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model))
        if scheduler is not None:
            scheduler.step()
        if log is not None:
            log("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        rows.append(row)
    return rows


def columns(rows: list[dict]) -> dict[str, list]:
    """Per-epoch rows -> one list per metric: compact in runs.jsonl, easy to turn into a DataFrame."""
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}
