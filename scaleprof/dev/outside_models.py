"""Models from outside the zoo for the crosscheck report (issue 11): quantized (int8) toy models, which need
only torch.ao.quantization, and torchvision's detection models where torchvision imports. Each entry builds the
model (random weights, eval mode, on CPU), its input, and for a quantized model the float model it came from.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

DETECTION = ("fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn",
             "maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn", "ssdlite320_mobilenet_v3_large")


@dataclass
class Outside:
    name: str
    group: str                                 # "quantized" or "detection"
    build: Callable[[], nn.Module]
    input: tuple[int, ...]
    reference: Callable[[], nn.Module] | None = None   # the float model a quantized one came from


class QuantConvNet(nn.Module):
    """Conv, ReLU, a depthwise conv with a residual add_relu, max pooling and a linear: every static quantized
    op the counter has a formula for."""

    def __init__(self):
        super().__init__()
        import torch.ao.quantization as Q

        self.quant, self.dequant = Q.QuantStub(), Q.DeQuantStub()
        self.conv, self.relu = nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.add = torch.ao.nn.quantized.FloatFunctional()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 16 * 16, 10)

    def forward(self, x):
        y = self.relu(self.conv(self.quant(x)))
        y = self.pool(self.add.add_relu(self.dw(y), y))
        return self.dequant(self.fc(y.flatten(1)))


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()


def engine() -> str | None:
    engines = torch.backends.quantized.supported_engines
    return next((e for e in ("fbgemm", "qnnpack") if e in engines), None)


def _float_conv() -> nn.Module:
    torch.manual_seed(0)
    return QuantConvNet().eval()


def _static_quantized() -> nn.Module:
    import torch.ao.quantization as Q

    torch.backends.quantized.engine = engine()
    m = _float_conv()
    m.qconfig = Q.get_default_qconfig(torch.backends.quantized.engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Q.prepare(m, inplace=True)
        m(torch.randn(1, 3, 32, 32))
        Q.convert(m, inplace=True)
    return m


def _dynamic_quantized() -> nn.Module:
    import torch.ao.quantization as Q

    torch.backends.quantized.engine = engine()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Q.quantize_dynamic(_mlp(), {nn.Linear}, dtype=torch.qint8)


def _detection(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from torchvision.models import detection

        torch.manual_seed(0)
        return getattr(detection, name)(weights=None, weights_backbone=None).eval()

    return build


def outside_models() -> list[Outside]:
    """The models that can be built here: quantized ones where a quantized engine exists, detection ones where
    torchvision imports."""
    out = []
    if engine() is not None:
        out += [Outside("quantized conv net (int8, static)", "quantized", _static_quantized, (1, 3, 32, 32),
                        _float_conv),
                Outside("quantized MLP (int8, dynamic)", "quantized", _dynamic_quantized, (4, 64), _mlp)]
    try:
        import torchvision  # noqa: F401
    except Exception:   # torchvision absent, or present but broken (as on some machines): no detection rows
        return out
    out += [Outside(n, "detection", _detection(n), (1, 3, 320, 320)) for n in DETECTION]
    return out
