"""The original code's train/validation split, bug included (spec section 4, #1).

`main.py` zips image rows with label rows, shuffles the pairs and writes them back with
`data[:], targets[:] = zip(*combined)`. The pairs hold *views* of rows of the arrays being written, and numpy copies
the sequence into the destination row by row, so a row read late may already have been overwritten by an earlier
one: about half of the distinct images survive, duplicated, and most "validation" rows are copies of training rows.
The labels are corrupted the same way (one-hot rows, also views), so image and label stay aligned.
"""
from __future__ import annotations

import random

import numpy as np


def buggy_shuffle(n: int, seed: int) -> np.ndarray:
    """Which original row each row holds after the code's in-place shuffle of n rows, run on an index column
    (the corruption depends only on the order of writes, not on what a row holds)."""
    data = np.arange(n, dtype=np.float64).reshape(n, 1)  # float64 (N, 1) rows, like the code's views
    combined = list(zip(data, data.copy()))
    random.Random(seed).shuffle(combined)
    data[:], _ = zip(*combined)
    return data[:, 0].astype(np.int64)


def buggy_split(n: int, seed: int, *, train_share: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) of the original pool, as the code's shuffle and 80/20 cut produce them."""
    rows = buggy_shuffle(n, seed)
    cut = int(train_share * n)
    return rows[:cut], rows[cut:]


def leak_counts(train: np.ndarray, val: np.ndarray, *, earlier_train: np.ndarray | None = None) -> dict[str, int]:
    """Exact counts of what the buggy split does: distinct images, and validation rows that are training rows."""
    out = {"pool": len(train) + len(val), "distinct": len(np.union1d(train, val)), "train_rows": len(train),
           "train_distinct": len(np.unique(train)), "val_rows": len(val),
           "val_in_train": int(np.isin(val, train).sum())}
    if earlier_train is not None:
        out["val_in_earlier_train"] = int(np.isin(val, earlier_train).sum())
        out["val_in_either_train"] = int(np.isin(val, np.union1d(train, earlier_train)).sum())
    return out
