"""The digits HPO task: a small torch MLP on scikit-learn's digits, validation cross-entropy.

scikit-learn ships the digits (1,797 images of 8x8 pixels, 10 classes), so nothing is
downloaded. The split is fixed: 60 % train, 20 % validation, 20 % test, stratified, with
``random_state=0``; pixels are divided by 16 (no statistic of the validation or test part
leaks into training). A configuration of :data:`SPACE` trains an MLP of ``depth`` hidden
layers of ``width`` units for :data:`EPOCHS` epochs of mini-batches and returns the
validation cross-entropy after the last epoch. Details the task statement leaves open
(stratification, pixel scaling, the loss after the last epoch rather than the best epoch)
change absolute values: compare optimizers run side by side on this definition, not with
numbers measured on another.

Every value is a function of the configuration alone: the seed of the weights and of the
batch order is derived from the configuration (:func:`config_seed`), the global RNG is
restored afterwards, and the caller runs torch on one thread (``torch.set_num_threads(1)``),
so a configuration evaluated twice gives the same value and caching it changes nothing.

    python benchmarks/hpo_task.py            # times a few configurations, prints their losses
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Mapping
from functools import cache
from typing import Any

import torch
from torch import nn

import optarena as oa

EPOCHS = 10
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
SGD_MOMENTUM = 0.9

SPACE = oa.Space(
    {
        "lr": oa.Real(1e-4, 1e-1, log=True),
        "weight_decay": oa.Real(1e-6, 1e-2, log=True),
        "width": oa.Int(8, 256, log=True),
        "depth": oa.Int(1, 3),
        "activation": oa.Choice(["relu", "tanh", "gelu"]),
        "batch_size": oa.Choice([16, 32, 64, 128]),
        "optimizer": oa.Choice(["adam", "sgd"]),
    }
)


@cache
def split() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The fixed 60/20/20 split: ``{"train" | "val" | "test": (X float32, y int64)}``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_rest, y_tr, y_rest = train_test_split(X, y, test_size=0.4, random_state=0, stratify=y)
    X_val, X_te, y_val, y_te = train_test_split(
        X_rest, y_rest, test_size=0.5, random_state=0, stratify=y_rest
    )

    def pair(a: Any, b: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(a / 16.0, dtype=torch.float32), torch.as_tensor(b)

    return {"train": pair(X_tr, y_tr), "val": pair(X_val, y_val), "test": pair(X_te, y_te)}


def config_seed(config: Mapping[str, Any], base: int = 0) -> int:
    """A 31-bit seed determined by the configuration (and ``base``): the same configuration
    always trains from the same weights in the same batch order."""
    text = json.dumps({k: config[k] for k in sorted(config)}, sort_keys=True)
    return (zlib.crc32(text.encode()) + 1_000_003 * base) % (2**31 - 1)


def build(config: Mapping[str, Any]) -> nn.Module:
    """The MLP of a configuration: 64 -> (width, activation) x depth -> 10."""
    layers: list[nn.Module] = []
    fan_in = 64
    for _ in range(int(config["depth"])):
        layers += [nn.Linear(fan_in, int(config["width"])), ACTIVATIONS[config["activation"]]()]
        fan_in = int(config["width"])
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def train(config: Mapping[str, Any], base_seed: int = 0) -> nn.Module:
    """The model of ``config`` trained for :data:`EPOCHS` epochs on the training part."""
    X, y = split()["train"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config_seed(config, base_seed))
        model = build(config)
        order = torch.Generator().manual_seed(config_seed(config, base_seed) + 1)
        params = model.parameters()
        lr, wd = float(config["lr"]), float(config["weight_decay"])
        if config["optimizer"] == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=lr, weight_decay=wd)
        else:
            opt = torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=wd)
        bs = int(config["batch_size"])
        for _ in range(EPOCHS):
            perm = torch.randperm(X.shape[0], generator=order)
            for i in range(0, X.shape[0], bs):
                idx = perm[i : i + bs]
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
                opt.step()
    return model


def loss(model: nn.Module, part: str = "val") -> float:
    """Mean cross-entropy of ``model`` on ``part`` ("val" or "test"); NaN when training
    diverged (optarena ranks it as +inf)."""
    X, y = split()[part]
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(X), y))


def validation_loss(config: Mapping[str, Any]) -> float:
    """The objective: validation cross-entropy of ``config`` after :data:`EPOCHS` epochs
    (configurations are checked against :data:`SPACE` first)."""
    SPACE.encode(config)  # raises ValueError naming a missing, unknown or out-of-range entry
    return loss(train(config), "val")


def main() -> None:
    torch.set_num_threads(1)
    split()
    for cfg in [*SPACE.sample(0, 4), SPACE.decode(SPACE.encoding.centre)]:
        t = time.perf_counter()
        v = validation_loss(cfg)
        again = validation_loss(cfg)
        assert v == again or (math.isnan(v) and math.isnan(again)), "not deterministic"
        print(f"{v:8.4f}  {time.perf_counter() - t:5.2f} s (two runs)  {cfg}")


if __name__ == "__main__":
    main()
