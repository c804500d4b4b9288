import numpy as np
import pytest
import torch

from weightsharing import data
from weightsharing.errors import UserError


def test_pairs_reproduce_the_course_prologue(mnist):
    train, test = data.mnist_pairs(mnist, 1000, seed=0)
    assert train.x.shape == (1000, 2, 14, 14) and train.x.dtype == torch.float32
    assert train.index[0].tolist() == [36044, 10678] and test.index[0].tolist() == [7953, 9495]
    assert train.target.float().mean().item() == pytest.approx(0.551)
    assert test.target.float().mean().item() == pytest.approx(0.526)
    assert (train.classes[:, 0] == train.classes[:, 1]).float().mean().item() == pytest.approx(0.089)
    assert train.x.mean().item() == pytest.approx(33.14, abs=0.01) and train.x.max().item() == 255
    assert torch.equal(train.target, (train.classes[:, 0] <= train.classes[:, 1]).long())
    assert len(torch.unique(train.index)) == 2000  # drawn without replacement


def test_pair_images_are_the_pooled_source_images(mnist):
    train, _ = data.mnist_pairs(mnist, 10, seed=3)
    i, j = train.index[4].tolist()
    pooled = torch.nn.functional.avg_pool2d(mnist.x_train[[i, j]].float(), 2)
    assert torch.equal(train.x[4], pooled[:, 0])
    assert train.classes[4].tolist() == mnist.y_train[[i, j]].tolist()


def test_too_many_pairs_is_a_one_line_error(mnist):
    with pytest.raises(UserError, match="at most 5000"):
        data.mnist_pairs(mnist, 6000)


def write_npz(root, name, n=6, shape=(8, 8, 3)):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    y = np.arange(n) % 3
    np.savez(root / f"{name}.npz", x_train=x, y_train=y, x_test=x[:2], y_test=y[:2], classes=np.array(["a", "b", "c"]))
    return x


def test_load_reads_npz_as_nchw(tmp_path, monkeypatch):
    x = write_npz(tmp_path, "cifar10")
    monkeypatch.setenv("WEIGHTSHARING_DATA", str(tmp_path))
    ds = data.load("cifar10")
    assert ds.x_train.shape == (6, 3, 8, 8) and ds.x_train.dtype == torch.uint8
    assert torch.equal(ds.x_train[2, 1], torch.from_numpy(x[2, :, :, 1]))
    assert ds.classes == ("a", "b", "c") and ds.num_classes == 3 and ds.y_train.dtype == torch.int64


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
