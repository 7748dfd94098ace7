"""The `train` objective: a short training run on the user's data, several seeds, accuracy with spread.

Data: an ``.npz`` holding arrays ``x`` (N×C×H×W or N×H×W×C; uint8 is scaled to [0, 1]) and ``y`` (N
integer labels), or an image folder ``root/<class>/<image>`` (PIL; resized to ``image_size``, default the
family's base resolution). A fixed shuffle (seed 0) holds out 20% for validation. Each candidate sees the
images resized (bilinear) to its own resolution and normalized by the training split's channel statistics.

A few hundred steps leave batch-norm running statistics far from the weights' (momentum 0.01 in
EfficientNet), so before validation they are re-estimated on the training split (cumulative average,
no gradient): the usual step when weights are scored after a short run.
"""

from __future__ import annotations

import os
import statistics
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ScaleprofError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff"}
VAL_FRACTION = 0.2


def check_data(path) -> str:
    if not path:
        raise ScaleprofError("--objective train needs --data (an image folder or an .npz with arrays x and y)")
    p = Path(path)
    if not p.exists():
        raise ScaleprofError(f"--data {path}: no such file or folder")
    if p.is_file() and p.suffix != ".npz":
        raise ScaleprofError(f"--data {path}: expected an .npz file or an image folder")
    return str(p.resolve())


def _to_nchw(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim != 4:
        raise ScaleprofError(f"--data: x must be N×C×H×W or N×H×W×C, got shape {x.shape}")
    if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return np.transpose(x, (0, 3, 1, 2))
    return x


@lru_cache(maxsize=4)
def _load(path: str, mtime: float, image_size: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    p = Path(path)
    if p.is_file():
        with np.load(p, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise ScaleprofError(f"--data {path}: needs arrays x and y, has {', '.join(z.files)}")
            x, y = z["x"], z["y"]
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        x = torch.from_numpy(_to_nchw(x).astype(np.float32) / scale)
    else:
        from PIL import Image

        classes = sorted(d.name for d in p.iterdir() if d.is_dir())
        if not classes:
            raise ScaleprofError(f"--data {path}: no class folders (expected root/<class>/<image>)")
        xs, ys = [], []
        for label, cls in enumerate(classes):
            for f in sorted((p / cls).iterdir()):
                if f.suffix.lower() in IMAGE_EXTENSIONS:
                    with Image.open(f) as im:
                        im = im.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
                        xs.append(np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0)
                    ys.append(label)
        if not xs:
            raise ScaleprofError(f"--data {path}: no images found")
        x, y = torch.from_numpy(np.stack(xs)), np.asarray(ys)
    y = torch.as_tensor(np.asarray(y).reshape(-1), dtype=torch.int64)
    if len(x) != len(y):
        raise ScaleprofError(f"--data {path}: {len(x)} inputs but {len(y)} labels")
    if len(x) < 4:
        raise ScaleprofError(f"--data {path}: {len(x)} examples; at least 4 needed (train and validation)")
    if int(y.min()) < 0:
        raise ScaleprofError(f"--data {path}: labels must be >= 0")
    return x, y, int(y.max()) + 1


def load_data(path: str, image_size: int = 224):
    """(x float32 N×C×H×W, y int64, number of classes); cached per process."""
    return _load(path, os.path.getmtime(path), int(image_size))


def _split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    n_val = max(1, round(n * VAL_FRACTION))
    return perm[n_val:], perm[:n_val]


def _prepare(x: torch.Tensor, shape, train_idx) -> torch.Tensor:
    channels, side = shape[1], shape[-1]
    if x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    elif x.shape[1] != channels:
        raise ScaleprofError(f"--data has {x.shape[1]} channels; the model takes {channels}")
    if x.shape[-2:] != (side, side):
        x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    mean = x[train_idx].mean(dim=(0, 2, 3), keepdim=True)
    std = x[train_idx].std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return ((x - mean) / std).contiguous()


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over the passes below
    model.train()
    for i in range(0, len(x), batch_size):
        if len(x[i:i + batch_size]) > 1:
            model(x[i:i + batch_size])
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom


def _optimizer(name: str, params, lr: float):
    # Not bench.train.make_optimizer on purpose: that one takes an SGD-scale lr and gives Adam a tenth of it;
    # here --lr is the chosen optimizer's own learning rate (1e-3 is Adam's usual default).
    # the name was checked by TrainOptions (options.OPTIMIZERS)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.Adam(params, lr=lr)


def train_candidate(family, c: dict, options) -> dict:
    """Train the candidate ``options.steps`` steps per seed (options: a TrainOptions); validation accuracy
    mean and spread over seeds."""
    path = check_data(options.data)
    x, y, n_classes = load_data(path, options.image_size or family.base_knobs.get("resolution") or 224)
    steps, seeds = int(options.steps), list(options.seeds)
    bs, lr = int(options.batch_size), float(options.lr)
    extra = {"num_classes": n_classes} if family.accepts("num_classes") else {}
    train_idx, val_idx = _split(len(x))
    # the input shape from a meta build (no weights); the data resized and normalised once for every seed
    shape = family.input_shape(family.build(c["width"], c["depth"], c["resolution"], device="meta", **extra),
                               c["resolution"])
    xs = _prepare(x, shape, train_idx)
    xt, yt, xv, yv = xs[train_idx], y[train_idx], xs[val_idx], y[val_idx]
    b = max(2, min(bs, len(xt)))
    accs, losses = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        model = family.build(c["width"], c["depth"], c["resolution"], device="cpu", **extra)
        opt = _optimizer(options.optimizer, model.parameters(), lr)
        g = torch.Generator().manual_seed(seed)
        model.train()
        loss = torch.tensor(float("nan"))
        for _ in range(steps):
            idx = torch.randint(0, len(xt), (b,), generator=g)
            out = model(xt[idx])
            if out.shape[-1] < n_classes:
                raise ScaleprofError(f"the model has {out.shape[-1]} outputs but the data has {n_classes} classes")
            loss = F.cross_entropy(out, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        recalibrate_bn(model, xt, b)
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xv[i:i + b]).argmax(-1) for i in range(0, len(xv), b)])
        accs.append(float((pred == yv).float().mean()))
        losses.append(float(loss.detach()))
    return {"accuracy": statistics.fmean(accs),
            "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "accuracies": accs, "final_loss": statistics.fmean(losses), "steps": steps, "seeds": seeds,
            "train_examples": len(train_idx), "val_examples": len(val_idx)}
