"""The `zoo` verb's table: every named model with its default input, knobs, params and MACs.

It sits above the zoo because it counts: the zoo holds the architectures and their published figures, the
counter their cost; this module joins the two.
"""

from __future__ import annotations

import sys
import time

from . import zoo
from .counting import profile


def cost_row(name: str, by_kind: bool = False, *, with_cost: bool = True) -> dict:
    """One named model's row of ``summary``: name, family, input, width/depth/resolution, params and MACs
    (counted on meta tensors when ``with_cost``, else None), and the published params/MACs where known.
    ``by_kind`` adds the whole count (``totals`` and ``by_kind``: every metric, in total and per layer kind)
    and the published figure with its tolerances (``published``)."""
    shape = zoo.default_input(name)
    pub = zoo.published(name)
    row = {"name": name, "family": zoo.family_of(name), "input": "x".join(map(str, shape)), **zoo.knobs_of(name),
           "params": None, "macs": None, "published_params": (pub or {}).get("params"),
           "published_macs": (pub or {}).get("macs"), "published_source": (pub or {}).get("source")}
    if with_cost or by_kind:
        r = profile(zoo.build(name, device="meta"), [shape])
        row.update(params=r.totals.params, macs=r.totals.macs)
        if by_kind:
            row.update(totals=r.totals.to_dict(), by_kind=r.by_kind(), published=pub)
    return row


def summary(with_cost: bool = True, progress: bool = False) -> list[dict]:
    """One row per named model (``cost_row``): name, family, input, width/depth/resolution, params and MACs
    (counted on meta tensors when ``with_cost``, else None), and the published params/MACs where known.
    ``progress``: a line on stderr per model counted, with the elapsed time."""
    names = zoo.list_models()
    rows, t0 = [], time.perf_counter()
    for i, name in enumerate(names, 1):
        if progress:
            print(f"  zoo: counting {i}/{len(names)} {name} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr,
                  flush=True)
        rows.append(cost_row(name, with_cost=with_cost))
    return rows
