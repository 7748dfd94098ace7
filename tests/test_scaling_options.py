"""scale()'s typed options (defaults once, each checks itself), the objective registry, the candidate row's
keys and the text table drawn from a result's dict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from scaleprof import cli
from scaleprof.errors import ScaleprofError
from scaleprof.report.scale_tables import format_scale
from scaleprof.scaling import objectives as objmod
from scaleprof.scaling import scale
from scaleprof.scaling.candidate import ABSENT, CandidateRow
from scaleprof.scaling.options import (
    GridOptions,
    ObjectiveOptions,
    ScaleOptions,
    TrainOptions,
)
from scaleprof.scaling.result import CANDIDATE_KEYS

MODELS = Path(__file__).with_name("test_scaling_models.py").resolve()
TINY = f"{MODELS}:tiny_net"
QUIET = {"progress": False, "sweep": None, "threads": 1}


def _tiny_macs(width: float, depth: float, resolution: int) -> int:
    import importlib.util

    spec = importlib.util.spec_from_file_location("scaling_test_models_opts", MODELS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.tiny_macs(width, depth, resolution)


def test_keyword_arguments_reach_the_option_that_owns_them():
    o = ScaleOptions.from_kwargs(family=TINY, alpha="1.2", budget="<=3x", jobs=2, steps=5, seeds="3,4",
                                 latency_time=0.5, proxy="synflow", log="x.jsonl", objective="cost+proxy")
    assert (o.grid.family, o.grid.alpha, o.grid.beta) == (TINY, "1.2", None)
    assert (o.budget.budget, o.budget.tolerance) == ("<=3x", 0.05)
    assert (o.executor.executor, o.executor.jobs) == ("process", 2)      # more than one job: a process pool
    assert (o.objectives.train.steps, o.objectives.train.seeds) == (5, (3, 4))
    assert o.objectives.latency.latency_time == 0.5 and o.objectives.proxy.proxy == "synflow"
    assert o.objectives.names == ("cost", "proxy") and o.log.log == "x.jsonl"
    assert ScaleOptions.from_kwargs() == ScaleOptions()
    with pytest.raises(TypeError, match="'alhpa'"):
        ScaleOptions.from_kwargs(alhpa="1.2")


@pytest.mark.parametrize(("kw", "message"), [
    ({"tolerance": 1.5}, "--tolerance is relative"),
    ({"constraint": "price"}, "--constraint must be one of cost, formula, both"),
    ({"budget": "2y"}, "--budget '2y'"),
    ({"jobs": 0}, "--jobs must be a whole number >= 1"),
    ({"executor": "thread"}, "--executor must be one of local, process, ray"),
    ({"threads": 0}, "--threads must be a whole number >= 1"),
    ({"resume": True}, "--resume needs --log FILE"),
    ({"resolution_multiple": 0}, "--resolution-multiple must be a whole number >= 1"),
    ({"phi": 0}, "--phi must be positive"),
    ({"sweep": "7:0"}, "--sweep '7:0': empty or inverted range"),
    ({"sweep_from": "1.2,1.1"}, "--sweep-from must be best, paper or α,β,γ"),
    ({"latency_time": 0}, "--latency-time must be positive"),
    ({"steps": 0}, "--steps must be >= 1 and --seeds non-empty"),
    ({"seeds": ""}, "--steps must be >= 1 and --seeds non-empty"),
    ({"proxy": "snip"}, "--proxy must be one of synflow, grad_norm, naswot"),
    ({"objective": "train"}, "--objective train needs --data"),
    ({"objective": "cost+speed"}, "--objective 'speed': expected cost, latency, train, proxy"),
    ({"objective": "python:nomodule"}, "expected python:module:function"),
])
def test_each_option_refuses_bad_input_in_one_line(kw, message):
    with pytest.raises(ScaleprofError) as e:
        ScaleOptions.from_kwargs(**kw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_cli_writes_no_default_of_its_own():
    # every scale flag left out is None (or store_true's False), so the options' defaults apply
    args = cli.build_parser().parse_args(["scale"])
    own = {"func", "verb", "top", "plot", "quiet", "json", "debug", "resume"}
    given = {k: v for k, v in vars(args).items() if k not in own and v is not None}
    assert given == {}
    # the help text quotes the options' defaults
    assert TrainOptions.steps == 20 and GridOptions.sweep == "0:7"


def test_objective_options_keep_the_log_header():
    # the results log's header has always held these (a --resume compares them): same keys, same values
    assert ObjectiveOptions().to_config() == {
        "data": None, "steps": 20, "seeds": [0, 1, 2], "batch_size": 16, "lr": 0.001, "optimizer": "adam",
        "image_size": None, "latency_time": 5.0, "latency_batch": 1, "proxy": "naswot", "proxy_batch": 8,
        "seed": 0}
    o = ObjectiveOptions(train=TrainOptions(steps=7, seeds=(5,)))
    assert ObjectiveOptions.from_config(o.to_config()) == o
    assert ObjectiveOptions.from_config({}) == ObjectiveOptions()


@dataclass(frozen=True)
class _LaterOptions:
    depth: int = 3


@dataclass(frozen=True)
class _WithLater(ObjectiveOptions):
    later: _LaterOptions = field(default_factory=_LaterOptions)


def test_options_added_later_leave_old_headers_alone():
    # an objective's options added later: absent from the header at their defaults (old logs still resume)
    assert _WithLater().to_config() == ObjectiveOptions().to_config()
    given = _WithLater(later=_LaterOptions(4))
    assert given.to_config()["later"] == {"depth": 4}
    assert _WithLater.from_config(given.to_config()) == given


def test_candidate_row_keys_in_the_json_order():
    row = CandidateRow(key="1.0000,1.0000,1.0000", index=0, alpha=1.0, beta=1.0, gamma=1.0, width=1.0, depth=1.0,
                       resolution=32, macs=10, params=2, activations=3, flops=20, cost_ratio=1.0,
                       formula_ratio=1.0, formula_ok=False, budget_ok=True, feasible=True, status="ok")
    d = row.to_dict()
    assert list(d) == ["key", "index", "alpha", "beta", "gamma", "width", "depth", "resolution", "macs", "params",
                       "activations", "flops", "cost_ratio", "formula_ratio", "formula_ok", "budget_ok",
                       "feasible", "latency_ms", "score", "status", "reason", "arch", "input", "duplicate_of",
                       "rank"]
    assert set(CANDIDATE_KEYS) <= set(d)
    row.activation_ratio, row.pareto, row.extra["mine"] = 0.5, True, 1
    assert list(row.to_dict())[-3:] == ["activation_ratio", "pareto", "mine"]
    assert row.get("latency_ratio", "none") == "none" and row.latency_ratio is ABSENT


def test_the_registry_knows_each_objective_once():
    assert set(objmod.REGISTRY) == {"cost", "latency", "train", "proxy", "predicted-latency"} and set(objmod.PREFIXES) == {"python:"}
    assert objmod.make_objective("latency").where == objmod.MAIN
    assert objmod.make_objective("python:a.b:c").where == objmod.WORKER
    assert objmod.make_objective("cost").where is None
    with pytest.raises(ValueError, match="registered twice"):
        objmod.register(type("Again", (), {"name": "cost"}))
    # the score leads: a worker objective, then latency, then cost
    lead = objmod.primary([objmod.make_objective(n) for n in ("cost", "latency", "proxy")])
    assert lead.name == "proxy"


class _Depth:
    """An objective added by one class: the score is 10 × the candidate's depth knob, run by the executor."""

    name, where, priority, main_note = "tenfold-depth", objmod.WORKER, 0, None

    def check(self, options):
        pass

    def setup(self, family, options, threads):
        return None

    def run(self, family, candidate, options, state):
        return {"score": 10 * candidate["depth"]}

    def apply(self, row, metrics):
        row.extra["tenfold"] = metrics["score"]

    def score(self, row, metrics, ctx):
        return metrics["score"]


def test_an_objective_is_one_class_registered_by_name():
    objmod.register(_Depth)
    try:
        r = scale(TINY, alpha="1.0,1.5", beta="1.0", gamma="1.0", budget="<=4x", objective="tenfold-depth",
                  **QUIET)
    finally:
        del objmod.REGISTRY["tenfold-depth"]
    by_alpha = {c["alpha"]: c for c in r.candidates}
    assert by_alpha[1.5]["score"] == 15.0 and by_alpha[1.0]["score"] == 10.0
    assert by_alpha[1.5]["tenfold"] == 15.0 and r.best["alpha"] == 1.5 and r.objective == "tenfold-depth"
    assert by_alpha[1.5]["metrics"] == {"tenfold-depth": {"score": 15.0}}


def test_the_table_is_drawn_from_the_result_dict():
    r = scale(TINY, alpha="1.0,1.5", beta="1.0", gamma="1.0,1.25", budget="<=2x", **QUIET)
    d = r.to_dict()
    text = format_scale(d)
    assert text == format_scale(json.loads(json.dumps(d)))          # the JSON read back prints the same
    lines = text.splitlines()
    base = _tiny_macs(1.0, 1.0, 32)
    assert lines[0].startswith("scale ") and "objective cost, budget <= 2x the base" in lines[0]
    assert lines[2].startswith("4 candidates, 4 architectures (0 duplicates collapsed), 3 feasible, 0 failed")
    best = next(line for line in lines if line.startswith("best: "))
    ratio = _tiny_macs(1.0, 1.0, 40) / base
    assert best.startswith("best: α=1 β=1 γ=1.25 (depth 1.0, width 1.0, resolution 40)")
    assert f"= {ratio:.3f}x the base" in best
    rule = next(i for i, line in enumerate(lines) if line.startswith("----"))
    ranked = [line.split()[:4] for line in lines[rule + 1:rule + 4]]
    assert ranked == [["1", "1", "1", "1.25"], ["2", "1.5", "1", "1"], ["3", "1", "1", "1"]]
    assert [f.name for f in fields(CandidateRow)][:3] == ["key", "index", "alpha"]
