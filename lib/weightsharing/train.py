"""One trainer over whole-dataset tensors: batches are index slices, no DataLoader, one history row per epoch."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

Batch = tuple[torch.Tensor, ...]


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
        data: Batch, *, epochs: int, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
        evaluate: Callable[[nn.Module], dict] | None = None,
        on_epoch: Callable[[dict], bool] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> list[dict]:
    """Train for up to `epochs` passes over `data` (tensors sharing their first axis); return one row per epoch.

    `loss_fn` returns the batch loss, or (loss, number of correct predictions) to log the running train accuracy.
    Without `shuffle` the batch order is the same every epoch (rows 0..B-1, B..2B-1, ...), as some papers did.
    `evaluate(model)` runs after every epoch under no_grad in eval mode and its dict joins the row; `on_epoch(row)`
    then runs (a plateau schedule, say) and stops training by returning True. `scheduler` steps after every
    optimizer step (a per-step cosine schedule); the row's `lr` is the last one used in the epoch.
    """
    n = len(data[0])
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        total, correct, count = torch.zeros(()), torch.zeros((), dtype=torch.long), 0  # summed on the device:
        # reading a loss back every step (loss.item()) would wait for the device each time
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            out = loss_fn(model, tuple(t[idx] for t in data))
            loss, hits = out if isinstance(out, tuple) else (out, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            lr = optimizer.param_groups[0]["lr"]
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total = total.to(loss.device) + loss.detach() * len(idx)
            if hits is not None:
                correct = correct.to(loss.device) + hits
            count += len(idx)
        row = {"epoch": epoch, "train_loss": total.item() / count, "lr": lr}
        if hits is not None:
            row["train_acc"] = correct.item() / count
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model))
        rows.append(row)
        if on_epoch is not None and on_epoch(row):
            break
    return rows


def columns(rows: list[dict]) -> dict[str, list]:
    """Per-epoch rows -> one list per metric: compact in runs.jsonl, easy to turn into a DataFrame."""
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def fit_stacked(model: nn.Module, optimizer: torch.optim.Optimizer,
                loss_fn: Callable[[nn.Module, torch.Tensor, Batch], torch.Tensor], data: Batch, *,
                replica_group: torch.Tensor, epochs: int, batch_size: int, generators: list[torch.Generator],
                decay_at: int | None = None, decay: float = 0.1) -> None:
    """Train R independent replicas stacked in one model (every parameter has a leading replica axis).

    `data` tensors are indexed (group, example, ...): replicas in the same group (e.g. one trial at several noise
    levels) share their inputs and their batch order, so comparisons between them are paired. Each group draws its
    batch order from its own generator (`generators[g]`), so a group's run does not depend on how many groups share
    the stack. Each step takes an (R, batch) index tensor; `loss_fn(model, rows, batch)` must return the SUM over
    replicas of each replica's mean loss, which makes one Adam step over the stack identical to R separate Adam
    steps (Adam is elementwise).
    """
    groups, n = data[0].shape[:2]
    if len(generators) != groups:
        raise ValueError(f"{len(generators)} generators for {groups} groups: pass one per group")
    rows = replica_group[:, None]
    for epoch in range(epochs):
        if decay_at is not None and epoch == decay_at:
            for group in optimizer.param_groups:
                group["lr"] *= decay
        order = torch.stack([torch.randperm(n, generator=g) for g in generators])[replica_group]  # (R, n)
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]
            loss = loss_fn(model, idx, tuple(t[rows, idx] for t in data))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
