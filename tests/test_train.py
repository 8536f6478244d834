"""The one training loop: determinism, budgets in (fractional) epochs, divergence, batch-norm calibration."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trautoml.data.dataset import Dataset
from trautoml.models.spec import ModelSpec, register_space
from trautoml.models.train import train_and_evaluate


def _blobs(n=300, seed=0, shift=0.25):
    """Two classes of 1x4x4 images whose mean brightness differs: a linear model separates them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype(np.int64)
    x = (rng.uniform(0, 0.5, size=(n, 1, 4, 4)) + shift * y[:, None, None, None]).astype(np.float32)
    return x, y


def _dataset():
    (xt, yt), (xv, yv), (xs, ys) = _blobs(300, 0), _blobs(100, 1), _blobs(100, 2)
    return Dataset("blobs", xt, yt, xv, yv, xs, ys, num_classes=2)


def _bn_linear(arch, input_shape, num_classes):
    c, h, w = input_shape
    return torch.nn.Sequential(torch.nn.BatchNorm2d(c), torch.nn.Flatten(), torch.nn.Linear(c * h * w, num_classes))


register_space("test-bn-linear", _bn_linear)
SPEC = ModelSpec("test-bn-linear", {}, {"lr": 0.1, "batch_size": 32})


def test_same_seed_same_result_and_a_learnable_task_is_learnt():
    ds = _dataset()
    a = train_and_evaluate(SPEC, ds, 3.0, seed=5)
    b = train_and_evaluate(SPEC, ds, 3.0, seed=5)
    assert (a.val_accuracy, a.test_accuracy, a.final_loss) == (b.val_accuracy, b.test_accuracy, b.final_loss)
    assert a.val_accuracy > 0.9 and a.test_accuracy > 0.9


def test_fractional_epochs_count_steps():
    ds = _dataset()
    assert train_and_evaluate(SPEC, ds, 0.5, seed=0).steps == 5   # ceil(0.5 * 300 / 32)
    assert train_and_evaluate(SPEC, ds, 2.0, seed=0).steps == 19  # ceil(2 * 300 / 32)
    with pytest.raises(ValueError, match="epochs must be positive"):
        train_and_evaluate(SPEC, ds, 0.0)


def test_diverging_training_is_reported_not_raised():
    ds = _dataset()
    huge = ModelSpec("test-bn-linear", {}, {"lr": 1e30, "momentum": 0.0, "batch_size": 32})
    res = train_and_evaluate(huge, ds, 3.0, seed=0)
    assert res.diverged
    assert 0.0 <= res.val_accuracy <= 1.0


def test_batchnorm_statistics_are_exact_averages_over_training_images():
    ds = _dataset()
    res = train_and_evaluate(SPEC, ds, 0.2, seed=0, keep_module=True)
    bn = res.module[0]
    # After calibration the running mean is the average of the batch means over the training images (batches of
    # 32, the last one short), not an EMA that after 2 steps still carries 81% of its initial 0.
    assert res.steps == 2
    assert bn.running_mean.item() == pytest.approx(float(ds.x_train.mean()), abs=5e-3)
    assert bn.momentum == 0.1  # restored for any later training


@pytest.mark.parametrize("hp", [dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4),
                                dict(optimizer="sgd", lr=0.05, momentum=0.0, weight_decay=0.0),
                                dict(optimizer="adam", lr=3e-3, momentum=0.0, weight_decay=1e-4),
                                dict(optimizer="adam", lr=3e-3, momentum=0.0, weight_decay=0.0)])
def test_own_optimizers_give_torch_optims_weights_bit_for_bit(hp):
    """trautoml.models.optim does torch.optim's arithmetic (SGD with Nesterov momentum, Adam, cosine annealing),
    without its first-use import of torch._dynamo: the same seed gives the very same weights."""
    from trautoml.models import optim
    from trautoml.models.train import _optimizer

    def run(own: bool):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3))
        x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
        params = list(net.parameters())
        if own:
            opt = _optimizer(params, hp)
            sched = optim.CosineSchedule(opt, t_max=30)
        else:
            opt = (torch.optim.Adam(params, lr=hp["lr"], weight_decay=hp["weight_decay"]) if hp["optimizer"] == "adam"
                   else torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], weight_decay=hp["weight_decay"],
                                        nesterov=hp["momentum"] > 0))
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)
        for step in range(30):
            idx = slice(2 * step % 64, 2 * step % 64 + 16)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
        return [p.detach().clone() for p in net.parameters()]

    for own, theirs in zip(run(True), run(False)):
        assert torch.equal(own, theirs)
