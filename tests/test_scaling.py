"""Compound scaling (`scaleprof scale`, scaleprof.scaling): grid, budgets, duplicates, resume, executors,
objectives, the φ sweep, the CLI contract.

Costs are checked against independent counts: torch's FlopCounterMode (conv/mm "flops" = 2 · MACs) on the
zoo's models, and tiny_net's MACs written out by hand (tests/test_scaling_models.py). Searches use small grids
on meta tensors or the tiny family, so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import scaleprof
import scaleprof.zoo as zoo
from scaleprof.cli import main
from scaleprof.errors import ScaleprofError
from scaleprof.scaling import ScaleResult, scale
from scaleprof.scaling import grid as gridmod
from scaleprof.scaling.budget import parse_budget, within
from scaleprof.scaling.family import arch_hash, resolve_family
from scaleprof.scaling.pareto import pareto_ranks
from scaleprof.scaling.result import CANDIDATE_KEYS

MODELS = Path(__file__).with_name("test_scaling_models.py").resolve()
TINY = f"{MODELS}:tiny_net"
B0_REPEATS = (1, 2, 2, 3, 3, 4, 1)          # figures.md, B0 stages
PAPER = (1.2, 1.1, 1.15)


def _load_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("scaling_test_models", MODELS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


tiny = _load_models()
# one torch thread: on a shared 2-core machine two spinning OpenMP threads make tiny models 100x slower
QUIET = {"progress": False, "sweep": None, "threads": 1}


def independent_macs(model, side: int) -> int:
    """torch's own counter: conv and addmm flops are 2 per MAC."""
    with FlopCounterMode(display=False) as fc:
        model(torch.empty(1, 3, side, side, device="meta"))
    return fc.get_total_flops() // 2


def mbconv_blocks(model) -> int:
    return sum(type(m).__name__ == "MBConv" for m in model.modules())


def table(result: ScaleResult) -> list[tuple]:
    """What a search found, without timings."""
    keys = ("key", "macs", "params", "activations", "cost_ratio", "formula_ratio", "feasible", "score",
            "status", "rank", "duplicate_of", "arch")
    return [tuple(c.get(k) for k in keys) for c in result.candidates]


# --- grid -------------------------------------------------------------------------------------------------------

def test_default_grid_holds_the_paper_point_exactly():
    a, b, g = (gridmod.parse_range(gridmod.DEFAULT_RANGES[k], k) for k in ("alpha", "beta", "gamma"))
    assert (len(a), len(b), len(g)) == (9, 6, 7)      # 1.0..1.4, 1.0..1.25, 1.0..1.3 by 0.05, ends included
    assert PAPER[0] in a and PAPER[1] in b and PAPER[2] in g
    cands = gridmod.build_grid(a, b, g, phi=1, base_knobs={"width": 1.0, "depth": 1.0, "resolution": 224})
    assert len(cands) == 9 * 6 * 7
    paper = [c for c in cands if (c.alpha, c.beta, c.gamma) == PAPER]
    assert len(paper) == 1
    assert (paper[0].depth, paper[0].width, paper[0].resolution) == (1.2, 1.1, 258)   # 224 · 1.15 = 257.6


def test_ranges_and_rounding():
    assert gridmod.parse_range("1.0:1.2:0.1", "alpha") == (1.0, 1.1, 1.2)
    assert gridmod.parse_range("1.2", "alpha") == (1.2,)
    assert gridmod.parse_range("1.1,1.0", "beta") == (1.0, 1.1)
    assert gridmod.parse_range([1.0, 1.05], "gamma") == (1.0, 1.05)
    assert gridmod.parse_range("1.0:1.1:0.3", "alpha") == (1.0,)        # STOP off the grid: not included
    for bad in ("1.4:1.0:0.05", "", "1.0:1.2", "1.0:1.2:0", "1.0:1.2:-0.1", "0.9:1.1:0.1", "a:b:c"):
        with pytest.raises(ScaleprofError):
            gridmod.parse_range(bad, "alpha")
    # resolution: half up to a whole pixel, or to a multiple
    assert gridmod.scaled_resolution(224, 1.15, 1) == 258
    assert gridmod.scaled_resolution(200, 1.0025, 1) == 201                # 200.5 -> 201
    assert gridmod.scaled_resolution(224, 1.15, 1, multiple=8) == 256      # 257.6 / 8 = 32.2 -> 32
    assert gridmod.scaled_resolution(224, 1.15, 2) == round(224 * 1.15 ** 2)   # 296.24 -> 296
    assert gridmod.scaled_multiplier(1.0, 1.2, 2) == 1.44


def test_budget_parsing_and_tolerance():
    b = parse_budget("2x", 0.05)
    assert (b.kind, b.value, b.ceiling) == ("relative", 2.0, False)
    assert b.meets(210, 100) and b.meets(190, 100) and not b.meets(211, 100) and not b.meets(189, 100)
    a = parse_budget("0.8G", 0.05)
    assert (a.kind, a.value) == ("absolute", 0.8e9)
    assert parse_budget("800M", 0.0).value == 8e8 and parse_budget("8e8", 0.0).value == 8e8
    c = parse_budget("<=2x", 0.05)
    assert c.ceiling and c.meets(10, 100) and not c.meets(211, 100)
    assert parse_budget(None, 0.05, phi=2).value == 4.0                   # 2^φ
    assert within(1.9203 / 2, 0.05) and not within(1.89 / 2, 0.05)
    for bad in ("2", "abc", "-1x", "0x"):
        with pytest.raises(ScaleprofError):
            parse_budget(bad, 0.05)
    with pytest.raises(ScaleprofError):
        parse_budget("2x", 1.5)


def test_grids_up_to_a_million_candidates_are_accepted():
    from scaleprof.scaling.options import GridOptions

    fam = resolve_family("efficientnet")
    ok = GridOptions(alpha="1.0:1.99:0.01", beta="1.0:1.99:0.01", gamma="1.0:1.99:0.01").ranges(fam, [])
    assert math.prod(len(v) for v in ok.values()) == 1_000_000
    with pytest.raises(ScaleprofError, match="1010000 candidates; at most 1000000"):
        GridOptions(alpha="1.0:2.0:0.01", beta="1.0:1.99:0.01", gamma="1.0:1.99:0.01").ranges(fam, [])
    first = next(gridmod.iter_grid(ok["alpha"], ok["beta"], ok["gamma"], phi=1, base_knobs=fam.base_knobs))
    assert (first.depth, first.width, first.resolution, first.index) == (1.0, 1.0, 224, 0)


def _without_times(res: dict) -> dict:
    return {**res, "timing": {**res["timing"], "cost_s": 0.0}}


def test_a_streamed_grid_gives_the_same_table_and_first_rows(monkeypatch):
    """A grid over keep_candidates streams (scaling/stream.py): its table is the whole grid's, its candidates
    the first rows of the same ranking, its Pareto front and paper's point the same; it holds at most
    keep_candidates rows beside those."""
    import scaleprof.scaling.search as search
    from scaleprof.report.scale_tables import format_scale

    full = scale("efficientnet", **QUIET)                       # the default grid: 378 candidates, all kept
    monkeypatch.setattr(search, "STREAM_CHUNK", 37)             # chunks that split architectures
    streamed = scale("efficientnet", keep_candidates=40, **QUIET)
    fd, sd = full.to_dict(), streamed.to_dict()
    assert (fd["candidates_total"], fd["candidates_kept"]) == (378, 378)
    assert format_scale(_without_times(sd)) == format_scale(_without_times(fd))
    assert sd["candidates_total"] == 378 and 40 <= sd["candidates_kept"] <= 40 + 8 + 1   # + the front, the paper's
    plain = [{k: v for k, v in c.items() if k not in ("pareto_rank", "same_arch")} for c in sd["candidates"]]
    assert plain[:40] == [{k: v for k, v in c.items() if k != "pareto_rank"} for c in fd["candidates"][:40]]
    assert {c["key"] for c in sd["candidates"] if c.get("pareto")} == {c["key"] for c in fd["candidates"] if c.get("pareto")}
    for k in ("duplicates", "architectures", "feasible_total", "feasible_architectures", "candidates_failed", "best"):
        if k == "best":
            assert {x: v for x, v in sd[k].items() if x not in ("pareto_rank", "same_arch")} == \
                {x: v for x, v in fd[k].items() if x != "pareto_rank"}
        else:
            assert sd[k] == fd[k]
    twins = {}
    for c in fd["candidates"]:
        twins[c["arch"]] = twins.get(c["arch"], 0) + 1
    assert all(c["same_arch"] == twins[c["arch"]] for c in sd["candidates"])


def test_a_grid_of_5000_is_held_in_bounded_rows():
    r = scale("efficientnet", alpha="1.0:1.4:0.02", beta="1.0:1.25:0.01", gamma="1.0:1.09:0.01",
              keep_candidates=100, **QUIET)
    assert r.candidates_total == 21 * 26 * 10 == 5460
    assert r.candidates_kept == len(r.candidates) <= 100 + 20      # the first 100, the front, the paper's point
    ranks = [c["rank"] for c in r.candidates if c.get("rank")]
    assert ranks == list(range(1, len(ranks) + 1)) and r.best["rank"] == 1
    assert r.feasible_total > len(ranks)


def test_pareto_ranks_equal_the_quadratic_definition():
    from scaleprof.scaling.pareto import dominates

    rng = np.random.default_rng(0)
    pts = [tuple(int(v) for v in p) for p in rng.integers(0, 6, size=(300, 3))]     # many ties and repeats
    ref, left, level = [-1] * len(pts), set(range(len(pts))), 0
    while left:
        front = {i for i in left if not any(dominates(pts[j], pts[i]) for j in left if j != i)}
        for i in front:
            ref[i] = level
        left, level = left - front, level + 1
    assert pareto_ranks(pts) == ref and max(ref) > 3
    assert pareto_ranks([]) == []


def test_pareto_ranks_by_hand():
    pts = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4), (2, 2)]
    # (1,5), (2,2) twice and (5,1) are on the front; (3,3) is beaten by (2,2); (4,4) by (3,3)
    assert pareto_ranks(pts) == [0, 0, 0, 1, 2, 0]


# --- the paper's point, duplicates ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def paper_run():
    # α 1.15 and 1.2 at β 1.1, γ 1.15: both round B0's repeats up to the same 23 blocks
    return scale("efficientnet", alpha="1.15:1.2:0.05", beta="1.1", gamma="1.15", budget="<=3x", **QUIET)


def test_paper_point_formula_and_real_cost(paper_run):
    c = paper_run.candidate(*PAPER)
    assert c is not None and c["status"] == "ok"
    assert c["formula_ratio"] == pytest.approx(1.2 * 1.1 ** 2 * 1.15 ** 2, rel=1e-12)
    assert round(c["formula_ratio"], 4) == 1.9203
    # independent count: torch's FlopCounterMode on the same architecture and on B0
    cand = zoo.build("efficientnet", device="meta", width=1.1, depth=1.2, resolution=258)
    b0 = zoo.build("efficientnet_b0", device="meta")
    ratio = independent_macs(cand, 258) / independent_macs(b0, 224)
    assert c["macs"] == independent_macs(cand, 258)
    assert c["cost_ratio"] == pytest.approx(ratio, rel=1e-12)
    assert 2.4 < c["cost_ratio"] < 2.8                                      # figures.md: "about 2.6x, not 2x"
    assert (mbconv_blocks(cand), mbconv_blocks(b0)) == (23, 16)
    assert paper_run.base["macs"] == 385_814_752                           # figures.md, EfficientNet-B0


def test_duplicates_collapse(paper_run):
    # by hand: ceil(r · 1.15) == ceil(r · 1.2) for every B0 stage
    assert [math.ceil(r * 1.15) for r in B0_REPEATS] == [math.ceil(r * 1.2) for r in B0_REPEATS]
    assert paper_run.duplicates == 1 and paper_run.architectures == 1
    first, second = sorted(paper_run.candidates, key=lambda c: c["index"])
    assert second["duplicate_of"] == first["key"]
    assert first["macs"] == second["macs"] and first["arch"] == second["arch"]
    assert first["formula_ratio"] != second["formula_ratio"]               # the formula still sees the α
    # equal scores: the tie goes to the α·β²·γ² nearer 2, the paper's point
    assert (paper_run.best["alpha"], paper_run.best["beta"], paper_run.best["gamma"]) == PAPER


def test_arch_hash_names_what_was_built():
    fam = resolve_family("efficientnet")
    h = arch_hash(fam.build(1.1, 1.05, 258), (1, 3, 258, 258))
    assert h == arch_hash(fam.build(1.1, 1.25, 258), (1, 3, 258, 258))     # same ceil'd repeats
    assert h != arch_hash(fam.build(1.1, 1.3, 258), (1, 3, 258, 258))      # 4 · 1.3 = 5.2 -> 6 blocks
    assert h != arch_hash(fam.build(1.15, 1.05, 258), (1, 3, 258, 258))
    assert h != arch_hash(fam.build(1.1, 1.05, 258), (1, 3, 260, 260))


def _default_grid(fam):
    a, b, g = (gridmod.parse_range(gridmod.DEFAULT_RANGES[k], k) for k in ("alpha", "beta", "gamma"))
    return gridmod.build_grid(a, b, g, phi=1, base_knobs=fam.base_knobs)


def test_layout_key_partitions_the_default_grid_as_arch_hash():
    # the independent check of the shortcut: every candidate built afresh and named by arch_hash; the layout
    # key (not built) with the resolution must group the candidates exactly as those digests do
    fam = resolve_family("efficientnet")
    by_hash, by_key = {}, {}
    for c in _default_grid(fam):
        shape = (1, 3, c.resolution, c.resolution)
        by_hash.setdefault(arch_hash(fam.build(c.width, c.depth, c.resolution), shape), set()).add(c.key)
        by_key.setdefault((fam.layout_key(c.width, c.depth, c.resolution), shape), set()).add(c.key)
    assert None not in {k for k, _ in by_key}
    assert sorted(map(sorted, by_key.values())) == sorted(map(sorted, by_hash.values()))
    assert len(by_hash) == 168 and len({k for k, _ in by_key}) == 24     # 378 candidates, 24 module trees


def test_cost_tasks_keep_each_architecture_in_one_task():
    from scaleprof.scaling.search import cost_tasks

    fam = resolve_family("efficientnet")
    cands = _default_grid(fam)
    tasks = cost_tasks(fam, cands, threads=1)
    assert sum(len(t["candidates"]) for t in tasks) == len(cands) and len(tasks) == 24
    for t in tasks:       # one module tree a task: a process or Ray worker builds it once, at all its inputs
        assert {fam.layout_key(c["width"], c["depth"], c["resolution"]) for c in t["candidates"]} == {t["layout_key"]}
    # without layouts (a user's callable): one task per (β, γ), as before
    tiny_fam = resolve_family(TINY)
    tiny_cands = gridmod.build_grid((1.0, 1.25, 1.5), (1.0, 1.5), (1.0, 1.25), phi=1, base_knobs=tiny_fam.base_knobs)
    assert tiny_fam.layout_key(1.0, 1.0, 32) is None
    groups = [{(c["beta"], c["gamma"]) for c in t["candidates"]} for t in cost_tasks(tiny_fam, tiny_cands, 1)]
    assert len(groups) == 4 and all(len(g) == 1 for g in groups)


def test_layout_shortcut_gives_the_same_table(monkeypatch):
    from scaleprof.scaling import blockcount, evaluate
    from scaleprof.scaling.family import Family

    grid = {"alpha": "1.0:1.2:0.05", "beta": "1.0,1.1", "gamma": "1.0,1.15", "budget": "<=3x", **QUIET}

    def run(**kw):
        evaluate._COUNTS.clear()
        evaluate._MODELS.clear()
        blockcount._UNITS.clear()
        r = scale("efficientnet", **grid, **kw)
        return [(*row, c["input"], c["flops"]) for row, c in zip(table(r), r.candidates, strict=True)]

    shortcut = run()
    pooled = run(executor="process", jobs=2)
    with monkeypatch.context() as m:   # every candidate built and named by arch_hash, as without layouts
        m.setattr(Family, "layout_key", lambda self, *a, **k: None)
        built = run()
    assert shortcut == built == pooled
    assert len({row[-3] for row in built}) < len(built)              # the grid does hold duplicates


def test_block_sums_equal_whole_model_counts_over_the_default_grid():
    # the proof of blockcount (~8 s): all 168 architectures, each tree built once as the search does,
    # every field count() returns equal to scaleprof.profile of the whole model
    from scaleprof.scaling import blockcount

    fam = resolve_family("efficientnet")
    trees: dict = {}
    for c in _default_grid(fam):
        trees.setdefault(fam.layout_key(c.width, c.depth, c.resolution), (c.width, c.depth, set()))[2].add(
            c.resolution)
    blockcount._UNITS.clear()
    checked = 0
    for width, depth, resolutions in trees.values():
        model = fam.build(width, depth, None)
        units = blockcount.units_of(model)
        assert units is not None
        for r in sorted(resolutions):
            whole = scaleprof.profile(model, [(1, 3, r, r)], device="meta", quiet=True).totals
            summed = blockcount.count_units(units, (1, 3, r, r))
            assert summed == {f: getattr(whole, f) for f in blockcount.FIELDS}, (width, depth, r)
            checked += 1
    assert len(trees) == 24 and checked == 168


def test_block_sums_hold_in_training_mode_and_key_the_drop_rate_there():
    from scaleprof.scaling import blockcount

    model = resolve_family("efficientnet").build(1.0, 1.0, 224).train()   # stochastic depth and dropout run
    units = blockcount.units_of(model)
    whole = scaleprof.profile(model, [(1, 3, 224, 224)], device="meta", quiet=True).totals
    assert blockcount.count_units(units, (1, 3, 224, 224)) == {f: getattr(whole, f) for f in blockcount.FIELDS}
    # two repeats of stage 5 differ only in their drop rate: one key in eval, two in training
    a, b = model.features[5][1], model.features[5][2]
    assert blockcount.unit_text(a) != blockcount.unit_text(b)
    a.eval(), b.eval()
    assert blockcount.unit_text(a) == blockcount.unit_text(b)


def test_block_count_only_where_it_is_exact():
    from scaleprof.scaling import blockcount, evaluate
    from scaleprof.zoo.efficientnet import EfficientNet

    fam = resolve_family("efficientnet")
    model = fam.build(1.0, 1.0, 224)
    assert blockcount.units_of(model) is not None
    sub = type("Sub", (EfficientNet,), {})       # a subclass may run another forward
    model.__class__ = sub
    assert blockcount.units_of(model) is None
    model.__class__ = EfficientNet
    hook = model.features.register_forward_hook(lambda m, a, y: y)   # the units would skip it
    assert blockcount.units_of(model) is None
    hook.remove()
    model.classifier[1].weight = model.features[0][0].weight            # shared: counted once, not per unit
    assert blockcount.units_of(model) is None
    assert blockcount.units_of(tiny.tiny_net(1.0, 1.0, 32)) is None      # other models are counted whole
    # the search takes the block path for efficientnet
    evaluate._COUNTS.clear(), blockcount._UNITS.clear()
    c = evaluate.count(fam, 1.1, 1.2, 258)
    assert blockcount._UNITS and c["macs"] == scaleprof.profile(fam.build(1.1, 1.2, 258), [(1, 3, 258, 258)],
                                                               device="meta", quiet=True).totals.macs


def test_each_blocks_closed_form_equals_the_dispatchers_count():
    # every distinct cost unit of a sample of the fine grid's layouts (its corners and two inside), chained
    # at even, odd and batched inputs: the closed form gives the dispatcher's totals and output shape
    from scaleprof.scaling import blockcount

    fam = resolve_family("efficientnet")
    checked: set = set()
    for width, depth, inputs in ((1.0, 1.0, [(1, 3, 224, 224), (2, 3, 257, 257)]),
                                 (1.25, 1.4, [(1, 3, 291, 291)]), (1.13, 1.02, [(1, 3, 241, 241)]),
                                 (1.06, 1.3, [(1, 3, 250, 233)])):
        units = blockcount.units_of(fam.build(width, depth, None))
        for shape in inputs:
            for unit, text in units:
                form = blockcount.closed_form(unit)
                assert form is not None, text[:80]
                cost, out = form(shape)
                if (text, shape) not in checked:
                    x = torch.empty(shape, device="meta")
                    totals, (y_shape, _, _) = blockcount._count_unit(unit, (shape, x.stride(), x.dtype))
                    assert dict(zip(blockcount.FIELDS, cost, strict=True)) == totals, (width, depth, shape)
                    assert out == y_shape
                    checked.add((text, shape))
                shape = out
    assert len({t for t, _ in checked}) > 40


def test_closed_forms_only_where_they_hold():
    from scaleprof.scaling import blockcount

    model = resolve_family("efficientnet").build(1.0, 1.0, 224)
    block = model.features[2][1]                    # an MBConv with its residual add
    assert blockcount.closed_form(block) is not None
    block.train()                                   # stochastic depth and batch statistics run
    assert blockcount.closed_form(block) is None
    block.eval()
    hook = block.block[0].register_forward_hook(lambda m, a, y: y)
    assert blockcount.closed_form(block) is None
    hook.remove()
    block.block[1][0].padding_mode = "reflect"      # a padding the closed form does not know
    assert blockcount.closed_form(block) is None
    assert blockcount.closed_form(torch.nn.Sequential(torch.nn.GELU())) is None
    stem = blockcount.closed_form(model.features[0])
    assert stem((1, 4, 224, 224)) is None and stem((1, 3, 1, 1)) is not None and stem((1, 3, 0, 0)) is None


def test_fast_grid_gives_the_dispatchers_table(monkeypatch):
    # a sample of the fine grid: the search with closed forms, and with every model counted whole by the
    # dispatcher (no block path at all), give the same table
    from scaleprof.scaling import blockcount, evaluate

    grid = {"alpha": "1.0,1.22,1.4", "beta": "1.0,1.13", "gamma": "1.0,1.07,1.21", "budget": "<=4x", **QUIET}

    def table():
        evaluate._COUNTS.clear(), evaluate._MODELS.clear(), blockcount._UNITS.clear()
        return [{k: v for k, v in c.items() if k != "seconds"} for c in scale("efficientnet", **grid).candidates]

    fast = table()
    assert blockcount._UNITS
    monkeypatch.setattr(blockcount, "assembled", lambda *a, **k: None)     # build every tree ...
    monkeypatch.setattr(blockcount, "units_of", lambda model: None)         # ... and count it whole
    whole = table()
    assert fast == whole and len(fast) == 18


def test_assembled_text_and_units_equal_the_built_models():
    # the trees of a sample of the fine grid (different repeats, widths, a named model's own dropout):
    # written from their distinct blocks, the text is module_text of the built model, byte for byte, and the
    # units are its cost units (the same unit texts, the same counts)
    from scaleprof.scaling import blockcount
    from scaleprof.scaling.family import module_text

    for family, width, depth in (("efficientnet", 1.0, 1.0), ("efficientnet", 1.13, 1.3),
                                 ("efficientnet", 1.25, 1.4), ("efficientnet_b3", 1.06, 1.02)):
        fam = resolve_family(family)
        text, units = blockcount.assembled(fam, width, depth, 240)
        model = fam.build(width, depth, 240)
        built = blockcount.units_of(model)
        assert text == module_text(model)
        assert [t for _, t in units[:-1]] == [t for _, t in built[:-1]]
        assert blockcount.count_units(units, (1, 3, 240, 240)) == blockcount._count_chain(built, (1, 3, 240, 240))
    assert blockcount.assembled(resolve_family("resnet"), 1.0, 1.0, 224) is None
    assert blockcount.assembled(resolve_family(TINY), 1.0, 1.0, 32) is None


def test_arch_hash_sees_list_attributes():
    from scaleprof.zoo.blocks import Permute

    # no parameters, no extra_repr: only the dims list tells the two apart
    nchw, nhwc = torch.nn.Sequential(Permute([0, 2, 3, 1])), torch.nn.Sequential(Permute([0, 3, 1, 2]))
    assert arch_hash(nchw, (1, 3, 8, 8)) != arch_hash(nhwc, (1, 3, 8, 8))
    assert arch_hash(nchw, (1, 3, 8, 8)) == arch_hash(torch.nn.Sequential(Permute([0, 2, 3, 1])), (1, 3, 8, 8))


def test_file_family_has_a_stable_module_name():
    # hash() is salted per process: the name of a file's module (part of arch_hash) must not depend on it
    import hashlib

    from scaleprof import spec

    fn = spec.resolve_callable(f"{MODELS}:own_class_net")
    assert spec.resolve_callable(f"{MODELS}:own_class_net") is fn            # the file is executed once
    digest = hashlib.sha1(str(MODELS).encode()).hexdigest()[:16]
    assert type(fn()[1]).__module__ == f"_scaleprof_user_{digest}"
    fam = resolve_family(f"{MODELS}:own_class_net")
    assert arch_hash(fam.build(1.0), (1, 3, 32, 32)) == arch_hash(fam.build(1.0), (1, 3, 32, 32))


def test_tiny_family_costs_by_hand():
    r = scale(TINY, alpha="1.0:1.5:0.25", beta="1.0,1.5", gamma="1.0,1.25", budget="<=4x", **QUIET)
    for c in r.candidates:
        assert c["macs"] == tiny.tiny_macs(c["width"], c["depth"], c["resolution"]), c["key"]
        assert c["cost_ratio"] == pytest.approx(c["macs"] / tiny.tiny_macs(1.0, 1.0, 32))
    # depth 1.25 and 1.5 both give ceil(2 · d) = 3 blocks: duplicates
    assert r.duplicates == 4 and r.architectures == 8


def test_ceiling_budget_uses_the_budget():
    # <=2x ±5%: (1, 1, 1) 1.0x, (1, 1, 1.25) 1.562x and (1.5, 1, 1) 1.421x are feasible (tiny_macs by hand);
    # the fewest activations (the base) must not win a ceiling: the most MACs under it does
    r = scale(TINY, alpha="1.0,1.5", beta="1.0,1.5", gamma="1.0,1.25", budget="<=2x", **QUIET)
    base = tiny.tiny_macs(1.0, 1.0, 32)
    feasible = {(c["alpha"], c["beta"], c["gamma"]) for c in r.candidates if c["feasible"]}
    assert feasible == {(1.0, 1.0, 1.0), (1.0, 1.0, 1.25), (1.5, 1.0, 1.0)}
    assert (r.best["alpha"], r.best["beta"], r.best["gamma"]) == (1.0, 1.0, 1.25)
    assert r.best["macs"] == tiny.tiny_macs(1.0, 1.0, 40) and r.best["cost_ratio"] <= 2.1
    assert r.best["score"] == pytest.approx(tiny.tiny_macs(1.0, 1.0, 40) / (2 * base))
    ranked = [(c["alpha"], c["beta"], c["gamma"]) for c in sorted(r.candidates, key=lambda c: c["rank"] or 99)
              if c["rank"]]
    assert ranked == [(1.0, 1.0, 1.25), (1.5, 1.0, 1.0), (1.0, 1.0, 1.0)]


# --- the φ sweep ------------------------------------------------------------------------------------------------

def test_phi_sweep_counts_the_built_models():
    r = scale("efficientnet", alpha="1.2", beta="1.1", gamma="1.15", budget="<=3x", sweep="0:2", progress=False)
    s = {row["phi"]: row for row in r.phi_sweep}
    assert s[0]["macs"] == 385_814_752 and s[0]["cost_ratio"] == 1.0
    m1 = zoo.build("efficientnet", device="meta", width=1.1, depth=1.2, resolution=258)
    assert s[1]["macs"] == scaleprof.profile(m1, [(1, 3, 258, 258)]).totals.macs
    m2 = zoo.build("efficientnet", device="meta", width=1.21, depth=1.44, resolution=296)
    assert s[2]["macs"] == independent_macs(m2, 296)
    assert (s[2]["depth"], s[2]["width"], s[2]["resolution"]) == (1.44, 1.21, 296)
    assert s[1]["target_ratio"] == 2 and s[2]["target_ratio"] == 4
    assert s[1]["paper_macs"] == 700_000_000                               # Table 2: B1 0.70B
    assert s[1]["released_macs"] == 686_802_832                            # figures.md exact B1


def test_phi_sweep_names_b_phi_only_from_b0():
    # B3 as the base: its φ = 1 is not B1, so no paper or released figures are attached
    r = scale("efficientnet_b3", alpha="1.2", beta="1.1", gamma="1.15", budget="<=3x", sweep="0:1", progress=False)
    assert r.phi_sweep[0]["macs"] == 1_827_141_392                         # figures.md exact B3
    assert not any(k in row for row in r.phi_sweep for k in ("paper_model", "paper_macs", "released_macs"))
    r = scale("efficientnet", alpha="1.2", beta="1.1", gamma="1.15", budget="<=3x", sweep="0", progress=False,
              base_resolution=240)
    assert "paper_macs" not in r.phi_sweep[0]


# --- resume, executors, failures -------------------------------------------------------------------------------

TINY_GRID = {"alpha": "1.0:1.5:0.25", "beta": "1.0:1.5:0.25", "gamma": "1.0,1.25", "budget": "<=4x"}


def test_resume_after_a_kill_gives_the_same_table(tmp_path):
    log = tmp_path / "search.jsonl"
    full = scale(TINY, **TINY_GRID, log=log, **QUIET)
    lines = log.read_text().splitlines()
    assert len(lines) == 1 + 18 and json.loads(lines[0])["type"] == "header"
    # simulate a kill after 7 candidates, the 8th line cut off half-way
    log.write_text("\n".join(lines[:8]) + "\n" + lines[8][: len(lines[8]) // 2])
    resumed = scale(TINY, **TINY_GRID, log=log, resume=True, **QUIET)
    assert resumed.resumed == 7 and resumed.timing["costed"] == 11
    assert table(resumed) == table(full)
    records = [json.loads(x) for x in log.read_text().splitlines()[1:] if x.strip().startswith("{")
               and x.strip().endswith("}")]
    assert len({r["key"] for r in records if r["type"] == "cost"}) == 18
    # without --resume an existing log is refused; a different search refuses to resume it
    with pytest.raises(ScaleprofError, match="already exists"):
        scale(TINY, **TINY_GRID, log=log, **QUIET)
    with pytest.raises(ScaleprofError, match="different search"):
        scale(TINY, **{**TINY_GRID, "alpha": "1.0"}, log=log, resume=True, **QUIET)


def test_process_pool_gives_the_same_table():
    local = scale(TINY, **TINY_GRID, **QUIET)
    pooled = scale(TINY, **TINY_GRID, executor="process", jobs=2, **QUIET)
    assert pooled.executor == "process"
    assert table(pooled) == table(local)


def test_a_worker_killed_mid_candidate_fails_only_that_candidate():
    # crashing_net calls os._exit at width and depth 1.5: the pool breaks, the survivors are rerun one at a
    # time, and the dead worker's group is split so that its healthy candidate is counted all the same
    r = scale(f"{MODELS}:crashing_net", alpha="1.0,1.5", beta="1.0,1.5", gamma="1.0", budget="<=4x",
              executor="process", jobs=2, **QUIET)
    by = {(c["alpha"], c["beta"]): c for c in r.candidates}
    assert by[(1.5, 1.5)]["status"] == "failed" and "worker process died" in by[(1.5, 1.5)]["reason"]
    for key in ((1.0, 1.0), (1.5, 1.0), (1.0, 1.5)):
        c = by[key]
        assert c["status"] == "ok" and c["macs"] == tiny.tiny_macs(c["width"], c["depth"], 32)


def test_closing_a_process_pool_early_starts_no_more_work(tmp_path):
    # at most `jobs` tasks in flight, and a closed generator cancels the rest instead of running them all
    import time
    from contextlib import closing

    from scaleprof.scaling.evaluate import objective_task
    from scaleprof.scaling.executors import run_tasks

    fam = resolve_family(TINY)
    tasks = [{"family": fam, "objective": f"python:{MODELS}:sleepy_scorer", "options": {}, "threads": 1,
              "candidate": {"key": str(i), "width": 1.0, "depth": 1.0, "resolution": 32,
                            "marker": str(tmp_path / str(i))}} for i in range(8)]
    with closing(run_tasks(objective_task, tasks, executor="process", jobs=2)) as results:
        i, ok, value = next(results)
        assert ok and value["status"] == "ok", value
    time.sleep(1.0)
    # the first result's marker, and at most the `jobs` tasks that were in flight (closing the pool now
    # terminates them, so whether they got to write theirs is a race): never the other five
    assert 1 <= len(list(tmp_path.iterdir())) <= 3


@pytest.mark.slow  # a local Ray instance takes ~5-15 s to start on 2 cores
def test_ray_gives_the_same_table():
    local = scale(TINY, **TINY_GRID, **QUIET)
    rayed = scale(TINY, **TINY_GRID, executor="ray", jobs=2, **QUIET)
    assert table(rayed) == table(local)
    import ray

    assert not ray.is_initialized()       # we started it, we shut it down


def test_a_failing_candidate_is_recorded_and_the_search_goes_on(tmp_path):
    log = tmp_path / "fail.jsonl"
    r = scale(TINY, **TINY_GRID, family_kwargs={"fail_above_width": 1.3}, log=log, **QUIET)
    failed = [c for c in r.candidates if c["status"] == "failed"]
    assert failed and all(c["width"] > 1.3 for c in failed)
    assert all("simulated out of memory" in c["reason"] for c in failed)
    assert all(c["status"] == "ok" for c in r.candidates if c["width"] <= 1.3)
    assert r.best is not None and r.best["width"] <= 1.3
    logged = [json.loads(x) for x in log.read_text().splitlines()[1:]]
    assert sum(x["status"] == "failed" for x in logged) == len(failed)


# --- objectives -------------------------------------------------------------------------------------------------

def test_latency_objective_pairs_each_candidate_with_the_base():
    r = scale(TINY, alpha="1.0", beta="1.0,2.0", gamma="1.0", budget="<=5x", objective="latency",
              latency_time=0.3, **QUIET)
    for c in r.candidates:
        assert c["latency_ms"] > 0 and c["metrics"]["latency"]["base_latency_ms"] > 0
        lo, hi = c["latency_ci95"]
        assert lo <= c["latency_ratio"] <= hi
        assert c["score"] == -c["latency_ratio"]
    assert r.best["rank"] == 1


def _toy_data(path: Path, n: int = 48) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 1.0, (n, 3, 12, 12)).astype(np.float32) + 0.8 * y[:, None, None, None]
    np.savez(path, x=x, y=y)
    return path


def test_train_objective_and_reward(tmp_path):
    data = _toy_data(tmp_path / "toy.npz")
    threads = torch.get_num_threads()
    r = scale(TINY, alpha="1.0", beta="1.0,1.5", gamma="1.0", budget="<=5x", objective="train+latency",
              data=data, steps=8, seeds=(0, 1), batch_size=8, latency_time=0.3, **QUIET)
    for c in r.candidates:
        m = c["metrics"]["train"]
        assert len(m["accuracies"]) == 2 and 0.0 <= c["accuracy"] <= 1.0
        assert c["accuracy"] == pytest.approx(sum(m["accuracies"]) / 2)
        assert c["accuracy_std"] == pytest.approx(float(np.std(m["accuracies"], ddof=1)))
        assert m["val_examples"] == round(48 * 0.2)
        # MnasNet: ACC · (LAT / T)^w, T = base latency × the budget's ratio (5)
        t = c["latency_target_ms"]
        assert c["score"] == pytest.approx(c["accuracy"] * (c["latency_ms"] / t) ** -0.07)
    assert torch.get_num_threads() == threads          # the caller's setting is restored


def test_objective_results_resume_from_the_log(tmp_path):
    log = tmp_path / "proxy.jsonl"
    kw = dict(alpha="1.0", beta="1.0,1.5", gamma="1.0", budget="<=5x", objective="proxy", log=log, **QUIET)
    first = scale(TINY, **kw)
    lines = log.read_text().splitlines()
    kinds = [json.loads(x)["type"] for x in lines]
    assert kinds == ["header", "cost", "cost", "objective", "objective"]
    log.write_text("\n".join(lines[:4]) + "\n")          # killed after the first proxy
    again = scale(TINY, **{**kw, "resume": True})
    assert table(again) == table(first)
    assert [json.loads(x)["type"] for x in log.read_text().splitlines()].count("objective") == 2


def test_image_folder_data(tmp_path):
    from PIL import Image

    from scaleprof.scaling.training import load_data

    for label, colour in (("cat", (250, 10, 10)), ("dog", (10, 10, 250))):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (20, 10), colour).save(tmp_path / label / f"{i}.png")
    x, y, n = load_data(str(tmp_path), image_size=16)
    assert x.shape == (6, 3, 16, 16) and n == 2 and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert x[0, 0].mean().item() == pytest.approx(250 / 255, abs=1e-6)


def test_proxy_and_python_objectives():
    r = scale(TINY, alpha="1.0", beta="1.0,1.5", gamma="1.0", budget="<=5x", objective="proxy", **QUIET)
    for c in r.candidates:
        p = c["proxies"]
        assert all(math.isfinite(p[k]) for k in ("synflow", "grad_norm", "naswot"))
        assert c["score"] == p["naswot"] and c["metrics"]["proxy"]["experimental"] is True
    r = scale(TINY, alpha="1.0", beta="1.0,1.5", gamma="1.0", budget="<=5x",
              objective=f"python:{MODELS}:width_scorer", **QUIET)
    assert r.best["beta"] == 1.5 and r.best["score"] == r.best["width"]
    r = scale(TINY, alpha="1.0", beta="1.0,1.5", gamma="1.0", budget="<=5x",
              objective=f"python:{MODELS}:dict_scorer", **QUIET)
    assert r.best["score"] == pytest.approx(0.5 + 0.1 * 1.5) and r.best["accuracy"] == r.best["score"]


# --- CLI ------------------------------------------------------------------------------------------------------

def test_cli_json_contract(capsys, tmp_path):
    rc = main(["scale", "--family", TINY, "--alpha", "1.0,1.5", "--beta", "1.0:1.5:0.5", "--gamma", "1.0",
               "--budget", "<=4x", "--sweep", "0:1", "--json", "--quiet", "--plot", str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)
    assert {"family", "phi", "budget", "candidates", "best"} <= set(d)
    assert len(d["candidates"]) == 4
    for c in d["candidates"]:
        assert set(CANDIDATE_KEYS) <= set(c)
    assert d["best"]["rank"] == 1 and len(d["phi_sweep"]) == 2
    for name in ("pareto.png", "feasibility.png", "phi.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000


@pytest.mark.parametrize("argv", [
    ["--alpha", "1.4:1.0:0.05"],                        # inverted
    ["--alpha", ""],                                    # empty
    ["--beta", "0.9:1.1:0.1"],                          # below 1
    ["--gamma", "1.0:1.2:0"],                           # zero step
    ["--budget", "lots"],
    ["--resume"],                                       # without --log
    ["--family", f"{MODELS}:no_knobs"],                 # cannot scale
    ["--family", "googlenet", "--alpha", "1.0:1.2:0.1"],  # no depth knob
    ["--family", "no_such_family"],
    ["--objective", "accuracy"],
])
def test_cli_bad_input_exits_2(argv, capsys):
    assert main(["scale", "--quiet", "--sweep", "", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_cli_unmet_budget_names_the_cheapest(capsys):
    rc = main(["scale", "--family", TINY, "--alpha", "1.0,1.5", "--beta", "1.0", "--gamma", "1.0",
               "--budget", "10x", "--quiet", "--sweep", ""])
    err = capsys.readouterr().err
    assert rc == 2 and "no candidate meets the budget" in err and "cheapest is α=1 β=1 γ=1" in err


# --- predicted latency (issue 13): a fake predictor and a fake timer on the tiny family ------------------------

def _fake_predicted_ms(c) -> float:
    return tiny.tiny_macs(c["width"], c["depth"], c["resolution"]) / 1e5 + 0.5      # ms, from MACs by hand


@pytest.fixture
def fake_predictor(monkeypatch, tmp_path):
    from scaleprof.scaling import predicted

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))       # no calibrated predictor: the roofline's target
    timed = []

    def measure(family, c, target, max_time):
        timed.append((c["depth"], c["width"], c["resolution"]))
        slow = (c["depth"], c["width"], c["resolution"]) == (1.5, 1.0, 40)
        return _fake_predicted_ms(c) * (1.2 if slow else 1.0)

    monkeypatch.setattr(predicted, "predicted_metrics", lambda fam, c, opts: {"predicted_ms": _fake_predicted_ms(c)})
    monkeypatch.setattr(predicted, "measure_ms", measure)
    return timed


TINY_LAT = {"alpha": "1.0,1.5", "beta": "1.0,1.5", "gamma": "1.0,1.25", "objective": "predicted-latency", **QUIET}


def test_predicted_latency_under_a_latency_budget_then_confirmed(fake_predictor):
    # predicted ms = MACs/1e5 + 0.5 (tiny_macs by hand): 4.00, 5.97, 7.97, 12.16 (α 1), 5.48, 8.28, 11.28, 17.35
    # (α 1.5); <=8.5ms +5% admits up to 8.925 ms: five candidates, scored by their MACs
    r = scale(TINY, budget="<=8.5ms", **TINY_LAT)
    feasible = sorted((c["depth"], c["width"], c["resolution"]) for c in r.candidates if c["feasible"])
    assert feasible == [(1.0, 1.0, 32), (1.0, 1.0, 40), (1.0, 1.5, 32), (1.5, 1.0, 32), (1.5, 1.0, 40)]
    assert all(c["budget_ok"] == (c["predicted_ms"] <= 8.5 * 1.05) for c in r.candidates)
    # by prediction the best is (α 1.5, 40 px: 777,632 MACs), then (β 1.5: 746,544), then (40 px: 547,232);
    # the three are timed, and the first measures 1.2 × 8.28 = 9.93 ms, over the budget: it drops to third
    assert fake_predictor == [(1.5, 1.0, 40), (1.0, 1.5, 32), (1.0, 1.0, 40)]
    ranked = sorted((c for c in r.candidates if c["rank"]), key=lambda c: c["rank"])
    assert [(c["depth"], c["width"], c["resolution"]) for c in ranked[:3]] == \
        [(1.0, 1.5, 32), (1.0, 1.0, 40), (1.5, 1.0, 40)]
    assert r.best["measured_meets_budget"] is True and r.best["predicted_error"] == pytest.approx(0.0)
    assert ranked[2]["measured_meets_budget"] is False
    assert ranked[2]["predicted_error"] == pytest.approx(1 / 1.2 - 1)
    assert r.budget["target_ms"] == 8.5 and r.budget["kind"] == "latency"


def test_predicted_latency_under_a_macs_budget_scores_the_fastest(fake_predictor):
    # <=2x: feasible by MACs; among them the lowest predicted ms leads (the base itself, 4.00 ms)
    r = scale(TINY, budget="<=2x", confirm=1, **TINY_LAT)
    assert r.best["macs"] == tiny.tiny_macs(1.0, 1.0, 32) and r.best["score"] == pytest.approx(-4.0024)
    assert fake_predictor == [(1.0, 1.0, 32)]


def test_a_latency_budget_needs_the_predicted_objective_and_a_feasible_candidate(fake_predictor):
    with pytest.raises(ScaleprofError, match="needs --objective predicted-latency"):
        scale(TINY, alpha="1.0", beta="1.0", gamma="1.0", budget="25ms", **QUIET)
    with pytest.raises(ScaleprofError, match=r"predicted from 4\.00 ms .* to 17\.35 ms"):
        scale(TINY, budget="<=2ms", **TINY_LAT)
    assert parse_budget("25ms", 0.05).kind == "latency" and parse_budget("<=2.5 ms", 0.05).ceiling


def test_cli_scale_predicted_latency(fake_predictor, capsys):
    rc = main(["scale", "--family", TINY, "--alpha", "1.0,1.5", "--beta", "1.0,1.5", "--gamma", "1.0,1.25",
               "--objective", "predicted-latency", "--budget", "<=8.5ms", "--confirm", "2", "--sweep", "",
               "--threads", "1", "--quiet", "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["best"]["predicted_ms"] == pytest.approx(_fake_predicted_ms(
        {"width": 1.5, "depth": 1.0, "resolution": 32}))
    assert len(fake_predictor) == 2
    assert main(["scale", "--family", TINY, "--objective", "predicted-latency", "--confirm", "-1"]) == 2
    assert "--confirm" in capsys.readouterr().err


def test_cli_scale_predicted_latency_table(fake_predictor, capsys):
    assert main(["scale", "--family", TINY, "--alpha", "1.0,1.5", "--beta", "1.0,1.5", "--gamma", "1.0,1.25",
                 "--objective", "predicted-latency", "--budget", "<=8.5ms", "--sweep", "", "--threads", "1",
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "predicted latency (the best timed to confirm)" in text
    # the first by measurement: (α 1, β 1.5, 32 px), predicted = measured = 7.965 ms (MACs/1e5 + 0.5)
    assert "7.965" in text and "+0.0" in text and "-16.7" in text      # 1/1.2 - 1 for the one over


def test_the_cli_keeps_what_keep_says(capsys):
    """`scale --keep N`: a grid over N candidates is streamed; the JSON says how many of how many it kept."""
    from scaleprof.cli import main

    rc = main(["scale", "--alpha", "1.0:1.2:0.05", "--beta", "1.0:1.1:0.05", "--gamma", "1.0:1.15:0.05",
               "--sweep", "", "--keep", "5", "--json", "--quiet"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["candidates_total"] == 5 * 3 * 4
    assert 5 <= d["candidates_kept"] == len(d["candidates"]) < d["candidates_total"]
    assert main(["scale", "--keep", "0", "--quiet"]) == 2
