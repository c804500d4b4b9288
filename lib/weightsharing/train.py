"""The trainers over whole-dataset tensors: batches are index slices, no DataLoader, one history row per epoch.

`fit` trains one model; `fit_replicas` several seeds of one model side by side, each as `fit` would; `fit_stacked`
models written with a replica axis (the tree nets).

Precision is a unit's choice, recorded in its key (`precise`): "fp32", or "bf16", which runs each forward pass (loss
and evaluation included) under `torch.autocast` in bfloat16 while the parameters, their gradients and the optimizer
(BetaLasso's thresholding among them) stay in fp32. A chapter trains bf16 where its own trainer measured at least
1.3x per step (`make bench`); arms it compares share one precision.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

Batch = tuple[torch.Tensor, ...]
PRECISIONS = ("fp32", "bf16")


def autocast(device: torch.device | str, precision: str):
    """The forward pass's precision: a no-op for fp32, bfloat16 autocast for bf16."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def precise(key: dict, precision: str) -> dict:
    """A unit's key with its precision. fp32 adds nothing: every unit stored before precision was a choice was
    trained in fp32, and its key stays valid."""
    return key if precision == "fp32" else {**key, "precision": precision}


def fit(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[nn.Module, Batch], torch.Tensor],
        data: Batch, *, epochs: int, batch_size: int, shuffle: bool = True, generator: torch.Generator | None = None,
        evaluate: Callable[[nn.Module], dict] | None = None,
        on_epoch: Callable[[dict], bool] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None, precision: str = "fp32") -> list[dict]:
    """Train for up to `epochs` passes over `data` (tensors sharing their first axis); return one row per epoch.

    `loss_fn` returns the batch loss, or (loss, number of correct predictions) to log the running train accuracy.
    Without `shuffle` the batch order is the same every epoch (rows 0..B-1, B..2B-1, ...), as some papers did.
    `evaluate(model)` runs after every epoch under no_grad in eval mode and its dict joins the row; `on_epoch(row)`
    then runs (a plateau schedule, say) and stops training by returning True. `scheduler` steps after every
    optimizer step (a per-step cosine schedule); the row's `lr` is the last one used in the epoch. `precision`: see
    the module's docstring.
    """
    n = len(data[0])
    cast = autocast(data[0].device, precision)
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        total, correct, count = torch.zeros(()), torch.zeros((), dtype=torch.long), 0  # summed on the device:
        # reading a loss back every step (loss.item()) would wait for the device each time
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            with cast:
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
            with torch.no_grad(), cast:
                row.update(evaluate(model))
        rows.append(row)
        if on_epoch is not None and on_epoch(row):
            break
    return rows


def seeded(seed: int, *, order: int | None = None) -> torch.Generator:
    """A unit's randomness from its own key: seeds torch's global generator, which a model's initialisation draws from,
    and returns a private generator for what the unit draws itself (batch order, noise, augmentation), seeded with
    `order` if given, else the same seed. Nothing else sharing the process or the sweep can shift either stream."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed if order is None else order)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def columns(rows: list[dict]) -> dict[str, list]:
    """Per-epoch rows -> one list per metric: compact in runs.jsonl, easy to turn into a DataFrame."""
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def fit_stacked(model: nn.Module, optimizer: torch.optim.Optimizer,
                loss_fn: Callable[[nn.Module, torch.Tensor, Batch], torch.Tensor], data: Batch, *,
                replica_group: torch.Tensor, epochs: int, batch_size: int, generators: list[torch.Generator],
                decay_at: int | None = None, decay: float = 0.1, precision: str = "fp32") -> None:
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
            with autocast(data[0].device, precision):
                loss = loss_fn(model, idx, tuple(t[rows, idx] for t in data))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def fit_replicas(models: list[nn.Module],
                 optimizers: list[torch.optim.Optimizer] | Callable[[list[torch.Tensor]], torch.optim.Optimizer],
                 loss_fn: Callable[[Callable, Batch], torch.Tensor], data: Batch, *, epochs: int, batch_size: int,
                 generators: list[torch.Generator], shuffle: bool = True,
                 evaluate: Callable[[int, nn.Module], dict] | None = None,
                 on_epoch: Callable[[int, dict], bool] | None = None, precision: str = "fp32") -> list[list[dict]]:
    """`fit` for R replicas of one architecture (seeds of one configuration) side by side: one vmapped forward and
    backward over their stacked parameters per step, and everything else per replica, exactly as `fit` runs it alone.

    Each replica keeps its own parameters (rows of the stacked leaves, stepped in place by its own optimizer),
    optimizer and scheduler, batch order (`generators[r]`, drawn as `fit` draws it) and stopping rule
    (`on_epoch(r, row)` returning True freezes replica r: no more steps, and its buffers as they were).
    `evaluate(r, model)` sees replica r as a plain module, its buffers copied out of the stack. A replica's gradient
    is its own because the stacked loss is the sum of the replicas' mean losses. `data` tensors are (R, n, ...):
    per replica, or one shared tensor expanded (a view, no copy). Returns each replica's rows, as `fit` would.

    Replicas that share their hyperparameters and never stop may pass one optimizer factory instead of the list:
    it is applied to the stacked leaves, one step for all (an elementwise optimizer such as SGD or Adam then does,
    element by element, what R of them would do, without R Python-level steps).
    """
    from torch.func import functional_call, vmap

    replicas, n = len(models), data[0].shape[1]
    shared = callable(optimizers)
    if (not shared and len(optimizers) != replicas) or len(generators) != replicas or any(t.shape[0] != replicas for t in data):
        raise ValueError(f"fit_replicas needs one optimizer (or one factory), generator and data row per model ({replicas})")
    skeleton = copy.deepcopy(models[0]).to("meta")
    # One stacked leaf per parameter, and every replica's parameter rebound to its row (storage shared): vmap runs on
    # the stack, while each replica's own optimizer steps its row in place. No copies per step either way.
    params = {}
    for name, _ in models[0].named_parameters():
        per_model = [dict(m.named_parameters())[name] for m in models]
        params[name] = torch.stack([p.detach() for p in per_model]).requires_grad_(True)
        for r, p in enumerate(per_model):
            p.data = params[name].data[r]
    own = [[(name, p) for name, p in m.named_parameters()] for m in models]
    if shared:
        optimizer = optimizers(list(params.values()))
    buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in models]) for name, _ in models[0].named_buffers()}

    def replica_loss(params, bufs, batch):
        return loss_fn(lambda *x: functional_call(skeleton, (params, bufs), x), batch)

    stacked_loss = vmap(replica_loss)
    rows_of = torch.arange(replicas)[:, None]
    active = list(range(replicas))
    history: list[list[dict]] = [[] for _ in models]
    for epoch in range(1, epochs + 1):
        for m in models:
            m.train()
        order = torch.stack([torch.randperm(n, generator=g) if shuffle else torch.arange(n) for g in generators])
        total, correct, count = torch.zeros(replicas), torch.zeros(replicas, dtype=torch.long), 0
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]
            with autocast(data[0].device, precision):
                out = stacked_loss(params, buffers, tuple(t[rows_of, idx] for t in data))
            loss, hits = out if isinstance(out, tuple) else (out, None)
            for p in params.values():
                p.grad = None
            loss.sum().backward()
            if shared:
                optimizer.step()
            else:
                for r in active:
                    for name, p in own[r]:
                        p.grad = params[name].grad[r]
                    optimizers[r].step()
            total = total + loss.detach() * idx.shape[1]
            if hits is not None:
                correct = correct + hits
            count += idx.shape[1]
        for r in list(active):
            _load_buffers(models[r], buffers, r)
            lr = (optimizer if shared else optimizers[r]).param_groups[0]["lr"]
            row = {"epoch": epoch, "train_loss": total[r].item() / count, "lr": lr}
            if hits is not None:
                row["train_acc"] = correct[r].item() / count
            if evaluate is not None:
                models[r].eval()
                with torch.no_grad(), autocast(data[0].device, precision):
                    row.update(evaluate(r, models[r]))
            history[r].append(row)
            if on_epoch is not None and on_epoch(r, row):
                if shared:
                    raise ValueError("a replica under the shared optimizer cannot stop alone: pass one optimizer per model")
                active.remove(r)  # its parameters no longer move; its buffers stay as just loaded
        if not active:
            break
    return history


def _load_buffers(model: nn.Module, stacked: dict[str, torch.Tensor], r: int) -> None:
    with torch.no_grad():
        for name, buf in model.named_buffers():
            buf.copy_(stacked[name][r])
