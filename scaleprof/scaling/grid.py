"""The candidate grid: α, β, γ ranges, their product, and the compound knobs each point gives at φ.

Ranges are built in decimal arithmetic and rounded to 4 decimals, so ``1.0:1.4:0.05`` holds 1.2 exactly
(float steps would give 1.2000000000000002 and miss the paper's point).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

from ..errors import ScaleprofError

DECIMALS = 4
_Q = Decimal(1).scaleb(-DECIMALS)
# Around the paper's grid search (Tan & Le 2019, section 3.3), which found (1.2, 1.1, 1.15) at φ = 1.
DEFAULT_RANGES = {"alpha": "1.0:1.4:0.05", "beta": "1.0:1.25:0.05", "gamma": "1.0:1.3:0.05"}
PAPER_POINT = (1.2, 1.1, 1.15)
SYMBOL = {"alpha": "α", "beta": "β", "gamma": "γ"}
KNOB_OF = {"alpha": "depth", "beta": "width", "gamma": "resolution"}
MAX_VALUES = 1000            # per coefficient: a typo in STEP should not make a million candidates
MAX_PHI = 16                 # EfficientNet goes to φ = 7; 2^16 × the base's cost is past any real model
MAX_COEFFICIENT = 4.0        # the paper's are 1.1 to 1.4; a coefficient of 4 quadruples a knob per φ
MAX_SCALE = 1024.0           # a knob's multiplier α^φ (β^φ, γ^φ) at the largest φ searched or swept


def _dec(text, name: str) -> Decimal:
    try:
        d = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise ScaleprofError(f"--{name}: {text!r} is not a number") from None
    if not d.is_finite():
        raise ScaleprofError(f"--{name}: {text!r} is not a finite number")
    return d


def _quantize(d: Decimal) -> float:
    return float(d.quantize(_Q, rounding=ROUND_HALF_EVEN))


def parse_range(value, name: str = "alpha") -> tuple[float, ...]:
    """Grid values of one coefficient, each ≥ 1, rounded to 4 decimals, sorted, without repeats.

    Accepts ``"START:STOP:STEP"`` (both ends included when on the grid), one number (``"1.2"`` or 1.2),
    a comma list (``"1.0,1.2"``) or a sequence of numbers.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ScaleprofError(f"--{name}: empty range; use START:STOP:STEP, e.g. {DEFAULT_RANGES[name]}")
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise ScaleprofError(f"--{name}: {value!r} is not START:STOP:STEP, e.g. {DEFAULT_RANGES[name]}")
            start, stop, step = (_dec(p, name) for p in parts)
            if step <= 0:
                raise ScaleprofError(f"--{name}: step must be positive, got {parts[2].strip()}")
            if stop < start:
                raise ScaleprofError(f"--{name}: inverted range {value!r} (STOP {stop} < START {start})")
            n = int((stop - start) / step) + 1
            if n > MAX_VALUES:
                raise ScaleprofError(f"--{name}: {value!r} gives {n} values; at most {MAX_VALUES}")
            values = [start + i * step for i in range(n)]
        else:
            values = [_dec(p, name) for p in text.split(",") if p.strip()]
            if not values:
                raise ScaleprofError(f"--{name}: empty list {value!r}")
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        values = [_dec(repr(value) if isinstance(value, float) else value, name)]
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if not value:
            raise ScaleprofError(f"{name}: empty list of values")
        values = [_dec(repr(v) if isinstance(v, float) else v, name) for v in value]
    else:
        raise ScaleprofError(f"{name}: expected START:STOP:STEP, a number or a list, got {value!r}")
    out = sorted({_quantize(v) for v in values})
    low = [v for v in out if v < 1.0]
    if low:
        raise ScaleprofError(f"--{name}: {SYMBOL[name]} must be >= 1 (the paper's constraint), got {low[0]:g}")
    if out[-1] > MAX_COEFFICIENT:
        raise ScaleprofError(f"--{name}: {SYMBOL[name]} = {out[-1]:g} is above the limit of {MAX_COEFFICIENT:g} "
                             "(the paper's are 1.1 to 1.4)")
    return tuple(out)


def check_scale(ranges: dict, phi: float) -> None:
    """Refuse a grid whose largest knob multiplier α^φ (β^φ, γ^φ) passes MAX_SCALE at ``phi``."""
    for name, values in ranges.items():
        m = max(values) ** phi
        if m > MAX_SCALE:
            raise ScaleprofError(f"--{name}: {SYMBOL[name]} = {max(values):g} at φ = {phi:g} multiplies the "
                                 f"{KNOB_OF[name]} by {m:.3g} (> {MAX_SCALE:g}): lower φ or the range")


@dataclass(frozen=True)
class Candidate:
    """One grid point and the knobs it gives the family at φ."""

    alpha: float
    beta: float
    gamma: float
    depth: float | None
    width: float | None
    resolution: int | None
    index: int = 0

    @property
    def key(self) -> str:
        return key_of(self.alpha, self.beta, self.gamma)

    @property
    def formula_ratio(self) -> float:
        return formula_ratio(self.alpha, self.beta, self.gamma)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["key"] = self.key
        return d


def key_of(alpha: float, beta: float, gamma: float) -> str:
    return f"{alpha:.{DECIMALS}f},{beta:.{DECIMALS}f},{gamma:.{DECIMALS}f}"


def formula_ratio(alpha: float, beta: float, gamma: float) -> float:
    """The paper's cost model per unit of φ: α·β²·γ² (FLOPs grow as depth × width² × resolution²)."""
    a, b, g = (Decimal(repr(x)) for x in (alpha, beta, gamma))
    return float(a * b * b * g * g)


def _power(c: float, phi: float) -> Decimal | float:
    # integral φ: exact decimal powers, so 224·1.15 = 257.6 is rounded as 257.6 and not 257.59999...
    if float(phi).is_integer():
        return Decimal(repr(c)) ** int(phi)
    return c ** phi


def scaled_multiplier(base: float | None, c: float, phi: float) -> float | None:
    """A width/depth knob at φ: base · c^φ, rounded to 6 decimals (float noise must not move a ceil)."""
    if base is None:
        return None
    return round(float(Decimal(repr(float(base))) * Decimal(str(_power(c, phi)))), 6)


def scaled_resolution(base: int | None, gamma: float, phi: float, multiple: int = 1) -> int | None:
    """The input side at φ: base · γ^φ rounded half up to the nearest multiple of ``multiple`` (1: pixel).

    EfficientNet-B0's 224 at γ = 1.15 gives 257.6 -> 258 (the released B1 uses a hand-picked 240).
    """
    if base is None:
        return None
    exact = Decimal(int(base)) * Decimal(str(_power(gamma, phi)))
    steps = (exact / multiple).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(multiple, int(steps) * multiple)


def build_grid(alphas: Sequence[float], betas: Sequence[float], gammas: Sequence[float], *, phi: float,
               base_knobs: dict, resolution_multiple: int = 1) -> list[Candidate]:
    """Every (α, β, γ) in α-major order with its knobs: depth α^φ, width β^φ, resolution γ^φ times the base's."""
    return list(iter_grid(alphas, betas, gammas, phi=phi, base_knobs=base_knobs,
                          resolution_multiple=resolution_multiple))


def iter_grid(alphas: Sequence[float], betas: Sequence[float], gammas: Sequence[float], *, phi: float,
              base_knobs: dict, resolution_multiple: int = 1) -> Iterator[Candidate]:
    """``build_grid`` one candidate at a time. Each knob depends on one coefficient only, so each is worked
    out once per value (in decimal arithmetic), not once per candidate."""
    depth = {a: scaled_multiplier(base_knobs.get("depth"), a, phi) for a in alphas}
    width = {b: scaled_multiplier(base_knobs.get("width"), b, phi) for b in betas}
    res = {g: scaled_resolution(base_knobs.get("resolution"), g, phi, resolution_multiple) for g in gammas}
    for i, (a, b, g) in enumerate(itertools.product(alphas, betas, gammas)):
        yield Candidate(a, b, g, depth=depth[a], width=width[b], resolution=res[g], index=i)


def check_phi(phi) -> float:
    try:
        p = float(phi)
    except (TypeError, ValueError):
        raise ScaleprofError(f"--phi must be a number, got {phi!r}") from None
    if not (math.isfinite(p) and p > 0):
        raise ScaleprofError(f"--phi must be positive (φ = 0 is the base itself), got {phi!r}")
    if p > MAX_PHI:
        raise ScaleprofError(f"--phi {p:g} is above the limit of {MAX_PHI} (2^{MAX_PHI} × the base's cost)")
    return p


def parse_phis(value) -> tuple[int, ...]:
    """The φ values of the scale-up sweep: ``"0:7"`` (step 1), ``"0:7:1"``, ``"0,1,3"`` or a sequence."""
    if value is None or value is False:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return ()
        if ":" in text:
            parts = [p.strip() for p in text.split(":")]
            if len(parts) not in (2, 3) or not all(p.lstrip("-").isdigit() for p in parts):
                raise ScaleprofError(f"--sweep {value!r}: expected START:STOP[:STEP] in whole numbers, e.g. 0:7")
            start, stop = int(parts[0]), int(parts[1])
            step = int(parts[2]) if len(parts) == 3 else 1
            if step <= 0 or stop < start:
                raise ScaleprofError(f"--sweep {value!r}: empty or inverted range")
            vals = list(range(start, stop + 1, step))
        else:
            try:
                vals = [int(p) for p in text.split(",") if p.strip()]
            except ValueError:
                raise ScaleprofError(f"--sweep {value!r}: whole numbers expected") from None
    elif isinstance(value, int):
        vals = [value]
    else:
        vals = [int(v) for v in value]
    if any(v < 0 for v in vals):
        raise ScaleprofError(f"--sweep: φ must be >= 0, got {min(vals)}")
    if any(v > MAX_PHI for v in vals):
        raise ScaleprofError(f"--sweep: φ must be <= {MAX_PHI}, got {max(vals)}")
    if len(vals) > 32:
        raise ScaleprofError(f"--sweep: at most 32 values of φ, got {len(vals)}")
    return tuple(sorted(set(vals)))
