"""Datasets as whole uint8 tensors: one loader for offline `.npz` copies and torchvision downloads.

`load(name)` looks for `<root>/<name>.npz` (keys x_train, y_train, x_test, y_test, classes; uint8 NHWC) and
otherwise downloads with torchvision into `<root>` and writes that same file, so every later load is one
`np.load`. The root is `$WEIGHTSHARING_DATA`, else `~/.cache/weightsharing`.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable

import numpy as np
import torch

from .errors import UserError

DATASETS = ("mnist", "cifar10", "cifar100", "svhn")
MATERIALIZE = "python ../shared/data/materialize.py DIR"
# What a valid file holds per dataset: one image's (H, W, C) and the number of classes.
IMAGE_SHAPE = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3), "svhn": (32, 32, 3)}
NUM_CLASSES = {"mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}
KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: torch.Tensor  # uint8 (N, C, H, W)
    y_train: torch.Tensor  # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def data_root() -> Path:
    env = os.environ.get("WEIGHTSHARING_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "weightsharing"


def load(name: str, root: str | Path | None = None) -> Dataset:
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    root = Path(root) if root is not None else data_root()
    path = root / f"{name}.npz"
    if not path.exists():
        _download(name, root, path)
    arrays = read_validated(name, path)
    to_nchw = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return Dataset(
        name=name,
        x_train=to_nchw(arrays["x_train"]),
        y_train=torch.from_numpy(arrays["y_train"].astype(np.int64)),
        x_test=to_nchw(arrays["x_test"]),
        y_test=torch.from_numpy(arrays["y_test"].astype(np.int64)),
        classes=tuple(str(c) for c in arrays["classes"]),
    )


def read_validated(name: str, path: Path) -> dict[str, np.ndarray]:
    """The arrays of `path`, checked before any training sees them: a damaged or malformed file is one line that names
    the file, what is wrong, and how to rebuild it."""
    def bad(problem: str) -> UserError:
        return UserError(f"{path}: {problem}; rebuild it with `{MATERIALIZE.replace('DIR', str(path.parent))}` "
                         f"(offline copy) or delete it to download {name} again")

    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                raise bad(f"no {', '.join(missing)} in the file")
            arrays = {k: f[k] for k in KEYS}
    except UserError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:  # truncated, not a zip, bad member
        # numpy's own messages (about pickles, say) mislead here: name the failure, not its wording
        raise bad(f"not a readable .npz (empty, truncated or another format: {type(e).__name__})") from None
    shape, classes = IMAGE_SHAPE[name], NUM_CLASSES[name]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8:
            raise bad(f"x_{split} is {x.dtype}, not uint8 pixels 0-255")
        if x.ndim != 4 or x.shape[1:] != shape:
            raise bad(f"x_{split} has shape {x.shape}, not (N, {', '.join(map(str, shape))}) images")
        if y.dtype != np.int64 or y.ndim != 1:
            raise bad(f"y_{split} is {y.dtype} of shape {y.shape}, not int64 labels of shape (N,)")
        if len(y) != len(x):
            raise bad(f"{len(x)} {split} images but {len(y)} labels")
        if len(y) and (y.min() < 0 or y.max() >= classes):
            raise bad(f"y_{split} has labels {y.min()}..{y.max()}, outside 0..{classes - 1}")
    if len(arrays["classes"]) != classes:
        raise bad(f"{len(arrays['classes'])} class names, not {classes}")
    return arrays


def _download(name: str, root: Path, path: Path) -> None:
    """Fetch with torchvision and cache as the same .npz the offline copies use."""
    import torchvision.datasets as tvd

    raw = root / "torchvision"
    try:
        if name == "svhn":
            splits = [tvd.SVHN(raw, split=s, download=True) for s in ("train", "test")]
            xs = [s.data.transpose(0, 2, 3, 1) for s in splits]  # SVHN is stored NCHW
            ys = [np.asarray(s.labels) for s in splits]
            classes = [str(i) for i in range(10)]
        else:
            cls = {"mnist": tvd.MNIST, "cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100}[name]
            splits = [cls(raw, train=t, download=True) for t in (True, False)]
            xs = [np.asarray(s.data) for s in splits]
            xs = [x[..., None] if x.ndim == 3 else x for x in xs]  # MNIST has no channel axis
            ys = [np.asarray(s.targets) for s in splits]
            classes = list(splits[0].classes)
    except Exception as e:  # torchvision raises URLError, RuntimeError, ... depending on where it fails
        raise UserError(
            f"{name} is not in {root} and could not be downloaded ({type(e).__name__}); "
            f"set WEIGHTSHARING_DATA to a folder holding {name}.npz, e.g. fill one with `{MATERIALIZE}`"
        ) from None
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, x_train=xs[0].astype(np.uint8), y_train=ys[0].astype(np.int64),
             x_test=xs[1].astype(np.uint8), y_test=ys[1].astype(np.int64), classes=np.array(classes))
    os.replace(tmp, path)


def balanced_subset(y: torch.Tensor, per_class: int, *, generator: torch.Generator) -> torch.Tensor:
    """Indices of `per_class` random examples of every class (the whole class if it is smaller), sorted."""
    keep = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(keep).sort().values


def to_float(x: torch.Tensor, *, center: bool = True) -> torch.Tensor:
    """uint8 -> float in [-1, 1] (center) or [0, 1]."""
    x = x.float() / 255
    return (x - 0.5) / 0.5 if center else x



class Latest:
    """The last value made, by key: one dataset's tensors in memory at a time, made again only when a sweep moves on
    to another dataset (or another subset of it). `latest(key, make)` returns the value for `key`, calling `make()`
    if the last one was for another key."""

    def __init__(self):
        self._key: Hashable = object()  # equal to no key
        self._value: Any = None

    def __call__(self, key: Hashable, make: Callable[[], Any]) -> Any:
        if key != self._key:
            self._value = None  # dropped before the next is made, so that two datasets never share the memory
            self._value, self._key = make(), key
        return self._value
