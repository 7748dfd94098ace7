"""Published figures the zoo reproduces (from ``shared/reference/figures.md``), with their tolerances.

Each row names a zoo model, the knobs/arguments that set it up (none for the model as named), the input
side, and params/MACs with an absolute tolerance: 0 for the exact torchvision rows, 0.0005 G for figures
printed to three decimals, a relative band for the papers' rounded tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TORCHVISION = "torchvision 0.29 metadata (num_params, _ops)"
G = 1_000_000_000
M = 1_000_000


@dataclass(frozen=True)
class Figure:
    model: str
    resolution: int
    params: int | None
    macs: int | None
    source: str
    params_tol: int = 0
    macs_tol: int = 0
    overrides: dict = field(default_factory=dict)   # knobs / builder arguments beyond the named model's
    note: str = ""

    def matches(self, params: int | None, macs: int | None) -> dict[str, bool]:
        out = {}
        if self.params is not None and params is not None:
            out["params"] = abs(params - self.params) <= self.params_tol
        if self.macs is not None and macs is not None:
            out["macs"] = abs(macs - self.macs) <= self.macs_tol
        return out

    def to_dict(self) -> dict:
        return {"model": self.model, "input": f"1x3x{self.resolution}x{self.resolution}",
                "resolution": self.resolution, "params": self.params, "params_tol": self.params_tol,
                "macs": self.macs, "macs_tol": self.macs_tol, "overrides": dict(self.overrides),
                "source": self.source, "note": self.note}


def _g3(value: float) -> tuple[int, int]:
    """A figure printed in G to three (or four) decimals: its value and the +-0.0005 G band."""
    return round(value * G), G // 2000


def _rel(value: float, unit: int, rel: float) -> tuple[int, int]:
    v = round(value * unit)
    return v, round(v * rel)


def _exact(model, res, params, macs, **kw) -> Figure:
    return Figure(model, res, params, macs, TORCHVISION, **kw)


def _rounded(model, res, params, macs_g, source: str = TORCHVISION, **kw) -> Figure:
    macs, tol = _g3(macs_g)
    return Figure(model, res, params, macs, source, macs_tol=tol, **kw)


# torchvision publishes EfficientNet-B2 at 288 px only (its weights' metadata: 1.088 G); the 260 px figure is
# that architecture counted at the paper's resolution, a reference count and not a published one.
_B2_AT_260 = ("torchvision's EfficientNet-B2 architecture counted at the paper's 260 px "
              "(shared/reference/figures.md); torchvision's weights publish 1.088 G at 288 px")


_TABLE2 = "EfficientNet paper Table 2 (arXiv 1905.11946), +-5%"
_MNV1 = "MobileNetV1 paper Tables 6-7 (arXiv 1704.04861), +-1%"


def _effnet_table2(model, res, params_m, macs_b) -> Figure:
    p, ptol = _rel(params_m, M, 0.05)
    m, mtol = _rel(macs_b, G, 0.05)
    return Figure(model, res, p, m, _TABLE2, params_tol=ptol, macs_tol=mtol)


def _mnv1(model, res, macs_m, params_m=None) -> Figure:
    m, mtol = _rel(macs_m, M, 0.01)
    p, ptol = (None, 0) if params_m is None else (round(params_m * M), M // 20)
    return Figure(model, res, p, m, _MNV1, params_tol=ptol, macs_tol=mtol,
                  overrides={} if res == 224 else {"resolution": res},
                  note="" if params_m is None else "params printed to 0.1M: +-0.05M")


FIGURES: tuple[Figure, ...] = (
    # torchvision architectures, 1000 classes, batch 1
    _exact("resnet18", 224, 11_689_512, 1_814_073_344),
    _rounded("resnet34", 224, 21_797_672, 3.664),
    _exact("resnet50", 224, 25_557_032, 4_089_184_256),
    _rounded("resnet101", 224, 44_549_160, 7.801),
    _rounded("resnet152", 224, 60_192_808, 11.514),
    _exact("resnext50_32x4d", 224, 25_028_904, 4_230_479_872),
    _exact("mobilenet_v2", 224, 3_504_872, 300_774_272),
    _exact("mobilenet_v3_large", 224, 5_483_032, 216_589_760),
    _exact("efficientnet_b0", 224, 5_288_548, 385_814_752),
    _exact("efficientnet_b1", 240, 7_794_184, 686_802_832),
    _rounded("efficientnet_b2", 260, 9_109_994, 0.9936, source=_B2_AT_260,
             note="not a published figure: a count of the reference architecture at 260 px"),
    _exact("efficientnet_b2", 288, 9_109_994, 1_087_529_456, overrides={"resolution": 288}),
    _exact("efficientnet_b3", 300, 12_233_232, 1_827_141_392),
    _exact("efficientnet_b4", 380, 19_341_616, 4_393_771_024),
    _exact("efficientnet_b5", 456, 30_389_784, 10_266_384_752),
    _exact("efficientnet_b6", 528, 43_040_704, 19_067_593_536),
    _exact("efficientnet_b7", 600, 66_347_960, 37_745_884_192),
    _exact("vgg16", 224, 138_357_544, 15_470_264_320),
    _rounded("vgg19", 224, 143_667_240, 19.632),
    _exact("googlenet", 224, 6_624_904, 1_498_376_192),
    _exact("convnext_tiny", 224, 28_589_128, 4_455_531_264),
    _exact("vit_b_16", 224, 86_567_656, 17_563_828_224),
    # EfficientNet paper, Table 2
    _effnet_table2("efficientnet_b0", 224, 5.3, 0.39),
    _effnet_table2("efficientnet_b1", 240, 7.8, 0.70),
    _effnet_table2("efficientnet_b2", 260, 9.2, 1.0),
    _effnet_table2("efficientnet_b3", 300, 12, 1.8),
    _effnet_table2("efficientnet_b4", 380, 19, 4.2),
    _effnet_table2("efficientnet_b5", 456, 30, 9.9),
    _effnet_table2("efficientnet_b6", 528, 43, 19),
    _effnet_table2("efficientnet_b7", 600, 66, 37),
    # MobileNetV1 paper: Table 6 (width) and Table 7 (resolution)
    _mnv1("mobilenet_v1", 224, 569, 4.2),
    _mnv1("mobilenet_v1_075", 224, 325, 2.6),
    _mnv1("mobilenet_v1_050", 224, 149, 1.3),
    _mnv1("mobilenet_v1_025", 224, 41, 0.5),
    _mnv1("mobilenet_v1", 192, 418),
    _mnv1("mobilenet_v1", 160, 290),
    _mnv1("mobilenet_v1", 128, 186),
    # other papers
    Figure("xception", 299, 22_855_952, None, "Xception paper (arXiv 1610.02357) / Keras trainable params"),
    Figure("googlenet", 224, None, 1_500_000_000, "GoogLeNet paper (arXiv 1409.4842): ~1.5 G mult-adds",
           macs_tol=15_000_000),
    Figure("resnet50", 224, None, 3_860_000_000, "ResNet paper v1 (stride on the first 1x1): 3.86 GMACs",
           macs_tol=5_000_000, overrides={"variant": "v1"}),
    Figure("mobilenet_v2", 224, None, 300_000_000, "MobileNetV2 paper (arXiv 1801.04381): 300M MAdds, +-1%",
           macs_tol=3_000_000, note="paper's 3.4M params exclude something torchvision counts (3.50M)"),
)

_PREFERENCE = {TORCHVISION: 0}


def figures(model: str | None = None) -> list[Figure]:
    """Every published row, or those of one named model."""
    return [f for f in FIGURES if model is None or f.model == model]


def best_figure(model: str, resolution: int) -> Figure | None:
    """The most exact row for the named model as built by default (no overrides, its own resolution)."""
    rows = [f for f in FIGURES if f.model == model and f.resolution == resolution
            and not set(f.overrides) - {"resolution"}]
    if not rows:
        return None
    return min(rows, key=lambda f: (_PREFERENCE.get(f.source, 1), f.macs_tol + f.params_tol))
