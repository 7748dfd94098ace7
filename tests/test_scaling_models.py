"""Tiny scalable families and scorers for tests/test_scaling.py (no tests here).

They are referenced as ``path/to/this/file.py:name`` specs, so process-pool and Ray workers can import them.
"""

from __future__ import annotations

import math

from torch import nn


def tiny_net(width: float = 1.0, depth: float = 1.0, resolution: int = 32, num_classes: int = 4,
             fail_above_width: float | None = None) -> nn.Module:
    """stem conv3x3 s2 3->C, ceil(2·depth) blocks of conv3x3 C->C + BN + ReLU, pool, linear.

    C = 8·width rounded to a multiple of 4 (at least 4). ``fail_above_width`` makes wide candidates raise,
    standing in for an out-of-memory build.
    """
    if fail_above_width is not None and width > fail_above_width:
        raise RuntimeError(f"simulated out of memory at width {width}")
    c = max(4, int(8 * width + 2) // 4 * 4)
    blocks = max(1, math.ceil(2 * depth))
    layers = [nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    for _ in range(blocks):
        layers += [nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    model = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))
    model.default_input = (1, 3, resolution, resolution)
    return model


def tiny_macs(width: float, depth: float, resolution: int, num_classes: int = 4) -> int:
    """tiny_net's MACs by hand: stem + blocks (3x3 convs at half resolution) + the linear layer."""
    c = max(4, int(8 * width + 2) // 4 * 4)
    blocks = max(1, math.ceil(2 * depth))
    side = (resolution + 2 - 3) // 2 + 1
    return side * side * c * 3 * 9 + blocks * side * side * c * c * 9 + c * num_classes


def no_knobs() -> nn.Module:
    """A callable that cannot scale: it takes no width, depth or resolution."""
    return nn.Linear(4, 4)


def width_scorer(model: nn.Module, candidate: dict) -> float:
    """A user's scorer: wider is better (a float)."""
    return float(candidate["width"])


def dict_scorer(model: nn.Module, candidate: dict) -> dict:
    """A user's scorer returning a dict with an accuracy and an extra metric."""
    n = sum(p.numel() for p in model.parameters())
    return {"accuracy": 0.5 + 0.1 * candidate["beta"], "params_seen": n}


def crashing_net(width: float = 1.0, depth: float = 1.0, resolution: int = 32) -> nn.Module:
    """tiny_net, except that a wide and deep build kills its process outright (as the OOM killer would)."""
    if width > 1.3 and depth > 1.3:
        import os

        os._exit(137)
    return tiny_net(width, depth, resolution)


class Scale(nn.Module):
    """A layer of this file's own: its class's module name is part of arch_hash."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def own_class_net(width: float = 1.0, resolution: int = 32) -> nn.Module:
    c = max(4, int(8 * width + 2) // 4 * 4)
    return nn.Sequential(nn.Conv2d(3, c, 3, 2, 1), Scale(0.5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(c, 4))


def sleepy_scorer(model: nn.Module, candidate: dict) -> float:
    """Marks that it started (a file named by the candidate), then takes half a second."""
    import time
    from pathlib import Path

    Path(candidate["marker"]).touch()
    time.sleep(0.5)
    return 1.0
