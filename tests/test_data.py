import numpy as np
import pytest
import torch

from weightsharing import data
from weightsharing.errors import UserError


def arrays(n=6, shape=(32, 32, 3), classes=10):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    y = np.arange(n, dtype=np.int64) % classes
    return {"x_train": x, "y_train": y, "x_test": x[:2], "y_test": y[:2],
            "classes": np.array([f"c{i}" for i in range(classes)])}


def write_npz(root, name, **overrides):
    a = arrays(shape=data.IMAGE_SHAPE[name], classes=data.NUM_CLASSES[name])
    a.update(overrides)
    np.savez(root / f"{name}.npz", **{k: v for k, v in a.items() if v is not None})
    return a["x_train"]


def test_load_reads_npz_as_nchw(tmp_path, monkeypatch):
    x = write_npz(tmp_path, "cifar10")
    monkeypatch.setenv("WEIGHTSHARING_DATA", str(tmp_path))
    ds = data.load("cifar10")
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert torch.equal(ds.x_train[2, 1], torch.from_numpy(x[2, :, :, 1]))
    assert ds.classes[:2] == ("c0", "c1") and ds.num_classes == 10 and ds.y_train.dtype == torch.int64


GOOD = arrays()
BAD_FILES = {  # what is wrong -> (the file's arrays, or None for raw bytes, the words the message must contain)
    "missing y_test": (dict(y_test=None), "no y_test"),
    "float32 images": (dict(x_train=GOOD["x_train"].astype(np.float32)), "x_train is float32, not uint8"),
    "wrong image shape": (dict(x_train=GOOD["x_train"][:, :28, :28, :1]), "not (N, 32, 32, 3) images"),
    "fewer labels than images": (dict(y_train=GOOD["y_train"][:5]), "6 train images but 5 labels"),
    "labels out of range": (dict(y_test=np.array([0, 10])), "outside 0..9"),
    "int32 labels": (dict(y_train=GOOD["y_train"].astype(np.int32)), "not int64 labels"),
    "class names": (dict(classes=np.array(["a", "b"])), "2 class names, not 10"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_malformed_file_is_one_line_naming_the_file_the_fault_and_the_fix(tmp_path, case):
    overrides, words = BAD_FILES[case]
    write_npz(tmp_path, "cifar10", **overrides)
    with pytest.raises(UserError) as e:
        data.load("cifar10", root=tmp_path)
    message = str(e.value)
    assert "\n" not in message and words in message
    assert str(tmp_path / "cifar10.npz") in message and "materialize.py" in message


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "empty"])
def test_a_damaged_file_is_one_line_not_a_traceback(tmp_path, damage):
    write_npz(tmp_path, "mnist")
    path = tmp_path / "mnist.npz"
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "not a zip": b"<html>404</html>", "empty": b""}[damage])
    with pytest.raises(UserError) as e:
        data.load("mnist", root=tmp_path)
    assert "\n" not in str(e.value) and "not a readable .npz" in str(e.value) and "mnist.npz" in str(e.value)


def test_the_offline_copies_pass_validation():
    for name in ("mnist", "cifar10", "cifar100"):
        ds = data.load(name)
        assert ds.x_train.shape[1:] == tuple(data.IMAGE_SHAPE[name][i] for i in (2, 0, 1))
        assert int(ds.y_train.max()) == data.NUM_CLASSES[name] - 1


def test_unknown_dataset_names_the_choices():
    with pytest.raises(UserError, match="choose one of mnist, cifar10, cifar100, svhn"):
        data.load("imagenet")


def test_missing_data_offline_is_one_line_naming_the_variable_and_the_command(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "SVHN", offline)
    with pytest.raises(UserError) as e:
        data.load("svhn", root=tmp_path)
    message = str(e.value)
    assert "\n" not in message and "WEIGHTSHARING_DATA" in message and "materialize.py" in message


def test_balanced_subset_takes_k_per_class_or_the_whole_class():
    y = torch.tensor([0] * 10 + [1] * 3 + [2] * 7)
    idx = data.balanced_subset(y, 5, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx]).tolist() == [5, 3, 5]
    assert len(torch.unique(idx)) == len(idx)
    again = data.balanced_subset(y, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(idx, again)


def test_latest_keeps_one_value_and_remakes_it_only_for_another_key():
    made = []
    latest = data.Latest()
    get = lambda key: latest(key, lambda: made.append(key) or f"tensors of {key}")
    assert [get("mnist"), get("mnist"), get("cifar10"), get("mnist")] == [
        "tensors of mnist", "tensors of mnist", "tensors of cifar10", "tensors of mnist"]
    assert made == ["mnist", "cifar10", "mnist"]  # one in memory at a time
