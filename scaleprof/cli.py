"""`scaleprof <verb>`: a thin shell over the Python API.

Each verb parses its arguments, calls the API, and prints. `--json` puts machine-readable output alone on
stdout. Exit codes: 0 success, 1 a check found a regression, 2 bad input or a failure (one line on stderr;
the traceback only with --debug).
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import json
import math
import sys
import traceback

from .errors import ScaleprofError, one_line

# The stdout main() started with: while a verb runs, the user's code prints to stderr (redirected in main), so
# that --json and the tables are alone on stdout.
_STDOUT: list = []


def _stdout():
    return _STDOUT[-1] if _STDOUT else sys.stdout


class _ReaderGone(Exception):
    """Our stdout's reader went away (`scaleprof zoo | head`); a BrokenPipeError from the user's code is not
    this, but a failure like any other."""


@contextlib.contextmanager
def _to_stdout():
    try:
        yield _stdout()
    except BrokenPipeError:
        raise _ReaderGone() from None


def print(*values, sep=" ", end="\n", file=None, flush=False):  # noqa: A001 - the verbs' own output
    if file is not None:
        builtins.print(*values, sep=sep, end=end, file=file, flush=flush)
        return
    with _to_stdout() as out:
        builtins.print(*values, sep=sep, end=end, file=out, flush=flush)


def _emit_json(obj) -> None:
    with _to_stdout() as out:
        json.dump(obj, out, indent=2, default=str)
        out.write("\n")


def _number(kind=float, *, signed: bool = False):
    """The argparse type of every numeric option: NaN, infinities (and, unless ``signed``, negatives) are
    refused with argparse's one-line usage error, since each would switch a limit off or loop for ever."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {kind.__name__} value: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if value < 0 and not signed:
            raise argparse.ArgumentTypeError(f"{text!r} is negative")
        return value

    parse.__name__ = kind.__name__   # argparse names the type in its messages
    return parse


_FLOAT, _INT = _number(float), _number(int)


def _add_model_args(p: argparse.ArgumentParser, *, positional: str = "spec") -> None:
    p.add_argument(positional, help="zoo name, module:callable, file.py:callable, torchvision:NAME, timm:NAME, "
                                       "hf:MODEL_TYPE or hf:path/config.json")
    _add_knob_args(p)


def _add_knob_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", action="append", metavar="SHAPE",
                   help="input shape, e.g. 1x3x224x224 (repeatable; 1x128:int64 for integer inputs; "
                        "NAME=SHAPE for a named input, e.g. input_ids=1x128:int64); "
                        "default: the zoo model's own resolution")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16, float64")
    p.add_argument("--width", type=_FLOAT, default=None, help="zoo width multiplier")
    p.add_argument("--depth", type=_FLOAT, default=None, help="zoo depth multiplier")
    p.add_argument("--resolution", type=_INT, default=None, help="zoo input resolution")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="keyword argument for a callable spec; for hf: a config field, or task=causal-lm|seq2seq-lm|"
                        "masked-lm|classification")


def _knobs(args) -> dict:
    from .shapes import parse_kwargs

    knobs = {k: getattr(args, k) for k in ("width", "depth", "resolution") if getattr(args, k, None) is not None}
    knobs.update(parse_kwargs(getattr(args, "arg", None)))
    return knobs


CHECK_TIMEOUT = 1800.0   # check runs unattended in CI: a hung forward must not hold the job for hours


def _add_timeout(p: argparse.ArgumentParser, default: float | None = None) -> None:
    """--timeout on every verb that runs the user's code (main() applies it around the verb)."""
    p.add_argument("--timeout", type=_FLOAT, default=default, metavar="SECONDS",
                   help="give up after this long, naming the phase (exit 2)"
                        + (f"; default {default:g}, 0: none" if default else "; default none"))


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout, nothing else")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


# --- profile ---------------------------------------------------------------------------------------------

def _cmd_profile(args) -> int:
    from .counting import profile
    from .spec import resolve_target

    target = resolve_target(args.spec, args.input, knobs=_knobs(args), device=args.device, dtype=args.dtype,
                            train=args.backward)
    result = profile(target, backward=args.backward, decode=args.decode, memory=args.memory,
                     optimizer=args.optimizer)
    if not result.complete:   # every format, JSON and CSV included: stderr keeps stdout parseable
        print(f"scaleprof: warning: {result.incompleteness()}", file=sys.stderr)
    crosscheck = None
    if args.crosscheck:
        from .counting.peers import crosscheck as run_crosscheck

        # the peers do real arithmetic: the same model with weights on CPU (the peers count it in eval mode)
        crosscheck = run_crosscheck(target.materialize("cpu"), result.inputs, ours=result)
    if args.json or args.format == "json":
        d = result.to_dict()
        if crosscheck is not None:
            d["crosscheck"] = crosscheck.to_dict()
        _emit_json(d)
        return 0
    from .report.tables import format_profile  # pandas: only the tables need it, not --json

    print(format_profile(result, by=args.by, level=args.level, fmt=args.format, title=_knob_title(args)))
    if crosscheck is not None:
        from .report.tables import format_crosscheck

        print()
        print(format_crosscheck(crosscheck, fmt=args.format))
    return 0


def _knob_title(args) -> str | None:
    """The header's name for a zoo model run with knobs: the family and its knobs, not the named model."""
    from .spec import is_zoo_spec

    if not is_zoo_spec(args.spec):
        return None
    from .zoo import knob_label

    return knob_label(args.spec, _knobs(args))


def _build_profile(sub) -> None:
    p = sub.add_parser("profile", help="count MACs, FLOPs, params, activations and bytes per layer and kind",
                       description="Count a model's cost on meta tensors (no weights allocated).")
    _add_model_args(p)
    p.add_argument("--device", default="meta", help="meta (default: no weights allocated), cpu or cuda")
    p.add_argument("--by", choices=["kind", "module", "op", "layer"], default="kind")
    # --depth is the zoo depth multiplier (issue 3), so the module-tree depth is --level.
    p.add_argument("--level", type=_INT, default=2, help="module tree depth for --by module")
    p.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    p.add_argument("--backward", action="store_true", help="count the backward pass too")
    p.add_argument("--decode", type=_INT, default=0, metavar="T",
                   help="generation: a prefill of the input's length, then T decode steps through the model's KV "
                        "cache (phases prefill and decode, kv_cache_bytes)")
    p.add_argument("--memory", action="store_true",
                   help="estimate memory without running: weights, gradients, optimizer state, saved activations, "
                        "KV cache, peak")
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="sgd",
                   help="with --memory --backward: whose state to count (default sgd with momentum)")
    p.add_argument("--crosscheck", action="store_true", help="run fvcore, thop and torch's FlopCounterMode beside")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_profile)


# --- zoo -------------------------------------------------------------------------------------------------

def _cmd_zoo(args) -> int:
    from .catalog import summary
    from .report.tables import format_zoo

    rows = summary(with_cost=not args.no_cost, progress=not args.no_cost)
    if args.json:
        _emit_json(rows)
    else:
        print(format_zoo(rows))
    return 0


def _build_zoo(sub) -> None:
    p = sub.add_parser("zoo", help="list the reference models with their default input, params and MACs")
    p.add_argument("--no-cost", action="store_true", help="skip counting (names and defaults only)")
    _add_common(p)
    p.set_defaults(func=_cmd_zoo)


# --- bench -----------------------------------------------------------------------------------------------

def _cmd_bench(args) -> int:
    from .bench.runner import bench
    from .errors import Interrupted
    from .report import bench_tables as table

    if args.micro:
        return _bench_micro(args)
    if not args.spec:
        raise ScaleprofError("bench needs a model spec (or --micro activations|convs)")
    from .bench.export import keep_onnx

    interrupted = None
    by = args.by or ("kind" if args.predict else None)    # --predict sets each kind's prediction beside its time
    # flags the user did not give are None: BenchOptions holds the defaults
    with keep_onnx(args.keep_onnx, args.spec) as kept:
        try:
            result = bench(args.spec, inputs=args.input, runtimes=args.runtime, device=args.device,
                           dtype=args.dtype, batch_sizes=args.batch, threads=args.threads, train=args.train, by=by,
                           max_time=args.max_time, target_ci=args.target_ci, samples=args.samples,
                           knobs=_knobs(args), memory=not args.no_memory, mfu=not args.no_mfu,
                           roofline=args.roofline is not None, optimizer=args.optimizer, level=args.level,
                           progress=True, log=args.log, resume=args.resume, total_time=args.total_time,
                           compile_memory=args.compile_memory or None)
        except Interrupted as exc:   # Ctrl-C: print the rows finished, then main() exits 130
            result, interrupted = exc.partial, exc
    for path in kept:
        print(f"bench: kept {path}", file=sys.stderr)
    _bench_roofline(args, result)
    prediction = (_bench_prediction(args, result) if args.predict and interrupted is None and result.ok()
                  else None)
    if args.json:
        d = result.to_dict()
        if prediction is not None:
            for row, p in zip(d["results"], prediction["rows"], strict=True):
                row["predicted_ms"], row["predicted_error"] = p["predicted_ms"], p["error"]
            d["prediction"] = prediction
        _emit_json(d)
    else:
        print(table.format_bench(result))
        if prediction is not None:
            from .report.predict_tables import format_bench_prediction

            print("\n" + format_bench_prediction(prediction))
    if interrupted is not None:
        raise interrupted
    if not result.ok():
        first = next((r.reason for r in result.results if r.reason), "unknown reason")
        print(f"scaleprof bench: error: nothing could be measured: {first}", file=sys.stderr)
        return 2
    return 0


def _bench_micro(args) -> int:
    from .bench.env import torch_threads
    from .bench.micro import run_micro
    from .bench.options import BenchOptions
    from .report import bench_tables as table
    from .shapes import parse_weight_dtype

    with torch_threads(args.threads):
        m = run_micro(args.micro, device=args.device or "cpu", dtype=parse_weight_dtype(args.dtype),
                      max_time=args.max_time or BenchOptions.max_time, progress=True)
    if args.json:
        _emit_json(m.to_dict())
    else:
        print(table.format_micro(m))
    return 0


def _bench_roofline(args, result) -> None:
    """--roofline PNG draws the plot there; a bare --roofline measures and says how to get the plot."""
    if result.roofline is None:
        return
    if args.roofline:
        from .files import atomic_write_bytes
        from .report.plots import roofline as roofline_png

        roof = result.roofline
        roof.plot = str(atomic_write_bytes(args.roofline, roofline_png(roof.peaks.to_dict(),
                                                                        [p.to_dict() for p in roof.points])))
        print(f"scaleprof bench: roofline plot written to {roof.plot}", file=sys.stderr)
    elif args.roofline == "":
        # never a file the user did not name (a --json run once overwrote ./roofline.png)
        print("scaleprof bench: roofline plot not written: give it a path, --roofline PNG", file=sys.stderr)


def _bench_prediction(args, result) -> dict:
    """bench --predict: the CLI composes (bench does not import predict)."""
    from .predict.bench_join import predict_bench

    return predict_bench(result.to_dict(), args.spec, knobs=_knobs(args), inputs=args.input, threads=args.threads,
                         predictor=args.predictor, force=args.force)


def _build_bench(sub) -> None:
    p = sub.add_parser("bench", help="latency, throughput, peak memory and training-step time",
                       description="Measure latency (median, 95% CI, IQR, p90/p99), throughput, cold start and "
                                   "peak memory per runtime, device and batch size.")
    p.add_argument("spec", nargs="?", help="zoo name, module:callable, file.py:callable, torchvision:NAME, timm:NAME, "
                                       "hf:MODEL_TYPE or hf:path/config.json")
    _add_knob_args(p)
    p.add_argument("--runtime", default=None, help="comma-separated: eager, compile[:MODE], onnxruntime[:LEVEL] (LEVEL: graph optimisation, disable|basic|extended|all), web (onnxruntime-web in headless Chromium)")
    p.add_argument("--device", default=None, help="cpu, cuda (comma-separated for both)")
    p.add_argument("--batch", default=None, help="batch sizes, e.g. 1,8,32 (default: the input's own)")
    p.add_argument("--threads", type=_INT, default=None, help="torch and ONNX Runtime intra-op threads")
    p.add_argument("--train", action="store_true", help="also time a training step per phase")
    p.add_argument("--optimizer", default=None, choices=["sgd", "adam", "adamw"], help="for --train (default sgd)")
    p.add_argument("--by", choices=["kind", "module"], default=None, help="attribute time to layer kinds or modules")
    p.add_argument("--level", type=_INT, default=None, help="module depth for --by module (default: leaves)")
    p.add_argument("--predict", action="store_true",
                   help="print the predicted latency beside the measured, per row and per kind (implies --by kind)")
    p.add_argument("--predictor", default=None, metavar="FILE",
                   help="for --predict: the predictor file (default: the one calibrated for this environment)")
    p.add_argument("--force", action="store_true", help="for --predict: use a predictor from another environment")
    p.add_argument("--roofline", nargs="?", const="", default=None, metavar="PNG",
                   help="measure this machine's peaks and place each layer kind (and plot it to PNG, if given)")
    p.add_argument("--micro", choices=["activations", "convs"], default=None, help="op micro-benchmarks instead")
    p.add_argument("--max-time", type=_FLOAT, default=None,
                   help="seconds per measurement (default 10; with --micro, for the whole suite)")
    p.add_argument("--target-ci", type=_FLOAT, default=None,
                   help="stop once the 95%% CI of the median is within this fraction (default 0.01)")
    p.add_argument("--no-memory", action="store_true", help="skip peak-memory measurement (CPU: subprocesses)")
    p.add_argument("--total-time", type=_FLOAT, default=None, metavar="SECONDS",
                   help="bound the whole command: rows that no longer fit are skipped, with the reason")
    p.add_argument("--compile-memory", action="store_true",
                   help="measure torch.compile rows' CPU memory too (the memory subprocess compiles again)")
    p.add_argument("--no-mfu", action="store_true", help="skip model FLOPs utilisation (a count and a peak measurement)")
    p.add_argument("--samples", action="store_true", help="include raw samples (samples_ms) in --json")
    p.add_argument("--log", default=None, metavar="FILE", help="append every finished row here (JSONL)")
    p.add_argument("--resume", action="store_true",
                   help="take rows an earlier run of the same bench finished in --log; measure the rest")
    p.add_argument("--keep-onnx", default=None, metavar="DIR",
                   help="keep the ONNX files the onnxruntime and web runtimes export, in DIR")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_bench)


# --- compare ---------------------------------------------------------------------------------------------

def _cmd_compare(args) -> int:
    from .report import bench_tables as table

    if args.spec_a.endswith(".json") and args.spec_b.endswith(".json"):
        from .bench.compare import compare_saved
        from .detect import require_kind
        from .files import read_json

        saved = [read_json(path, "bench result") for path in (args.spec_a, args.spec_b)]
        for obj, path in zip(saved, (args.spec_a, args.spec_b), strict=True):
            require_kind(obj, path, allowed=("bench",))
        d = compare_saved(*saved, **({"min_effect": args.min_effect} if args.min_effect is not None else {}))
        if args.json:
            _emit_json(d)
        else:
            print(table.format_saved_compare(d))
        return 0
    from .bench.compare import compare

    # flags the user did not give are None: CompareOptions holds the defaults
    result = compare(args.spec_a, args.spec_b, inputs=args.input, device=args.device, dtype=args.dtype,
                     runtime=args.runtime, batch_size=args.batch, threads=args.threads, max_time=args.max_time,
                     target_ci=args.target_ci, min_effect=args.min_effect, knobs=_knobs(args),
                     samples=args.samples, progress=True)
    if args.json:
        _emit_json(result.to_dict())
    else:
        print(table.format_compare(result))
    return 0


def _build_compare(sub) -> None:
    p = sub.add_parser("compare", help="is model B faster than model A? (interleaved rounds, CI and p-value)",
                       description="Measure two models in shuffled interleaved rounds in one process; report the "
                                   "ratio B/A with a bootstrap 95% CI, a Mann-Whitney p-value and a verdict. "
                                   "Two saved `bench --json` files are compared row by row instead.")
    p.add_argument("spec_a", help="model A (the reference), or a saved bench --json file")
    p.add_argument("spec_b", help="model B, or a saved bench --json file")
    _add_knob_args(p)
    p.add_argument("--runtime", default=None, help="eager, compile[:MODE] or onnxruntime[:LEVEL]")
    p.add_argument("--device", default=None, help="cpu or cuda")
    p.add_argument("--batch", type=_INT, default=None, help="batch size (default: the input's own)")
    p.add_argument("--threads", type=_INT, default=None, help="torch intra-op threads")
    p.add_argument("--max-time", type=_FLOAT, default=None, help="seconds for both (default 20)")
    p.add_argument("--target-ci", type=_FLOAT, default=None, help="stop once the ratio's CI is within this fraction")
    p.add_argument("--min-effect", type=_FLOAT, default=None,
                   help="smallest change that counts as a difference (fraction, default 0.01; 0: any significant one)")
    p.add_argument("--samples", action="store_true", help="include raw samples in --json")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_compare)


# --- report ----------------------------------------------------------------------------------------------

def _cmd_report(args) -> int:
    from .report.writer import write_report

    paths = write_report(args.results, args.out, title=args.title)
    if args.json:
        _emit_json(paths.to_dict())
    else:
        print(f"wrote {paths.markdown}")
        print(f"wrote {paths.html}")
        if paths.figures:
            print(f"wrote {len(paths.figures)} figures under {paths.figures[0].parent}")
    return 0


def _build_report(sub) -> None:
    p = sub.add_parser("report", help="Markdown and HTML report from profile, bench, compare and scale JSON",
                       description="Write report.md (figures as PNG beside it) and a self-contained report.html "
                                   "(figures inline) from the --json output of profile, bench, compare, scale, "
                                   "check or zoo runs; each file's kind is told from its keys.")
    p.add_argument("results", nargs="+", metavar="RESULT.json", help="JSON written by a scaleprof verb's --json")
    p.add_argument("--out", "-o", default="report", help="output folder (default: ./report)")
    p.add_argument("--title", default=None, help="the report's title")
    _add_common(p)
    p.set_defaults(func=_cmd_report)


# --- check -----------------------------------------------------------------------------------------------

def _cmd_check(args) -> int:
    from .gate import check, error_result
    from .report.verdict import append_step_summary, verdict_markdown

    try:
        result = check(args.spec, baseline=args.baseline, save=args.save, tolerances=args.tolerance,
                       against=args.against, inputs=args.input, dtype=args.dtype, knobs=_knobs(args),
                       latency=args.latency, cost_only=args.cost_only, allow_decrease=args.allow_decrease,
                       threshold=args.threshold, alpha=args.alpha, runtime=args.runtime, device=args.device,
                       max_time=args.max_time, predicted=_predicted_check(args))
    except BaseException as exc:   # a failure, sys.exit in the model, --timeout, Ctrl-C: never a silent pass
        # the CI gets its verdict in every channel it reads, then main() prints the one line and exits 2
        err = error_result(one_line(exc), model=args.spec)
        append_step_summary(verdict_markdown(err))
        if args.json:
            _emit_json(err.to_dict())
        raise
    append_step_summary(verdict_markdown(result))
    if args.json:
        _emit_json(result.to_dict())
    else:
        print(verdict_markdown(result, all_rows=args.all), end="")
        print(f"verdict: {result.verdict}")
    return result.exit_code


def _predicted_check(args):
    if not args.predicted:
        if args.predictor or args.force:
            raise ScaleprofError("--predictor and --force go with --predicted")
        return False
    from .gate.predicted import PredictedCheck

    return PredictedCheck(predictor=args.predictor, force=args.force)


def _build_check(sub) -> None:
    p = sub.add_parser("check", help="CI gate: cost (and latency) against a baseline; exit 1 on a regression",
                       description="Compare a model's MACs, FLOPs, params, activations and bytes (total and per "
                                   "layer kind) with a stored baseline, exactly unless --tolerance says otherwise; "
                                   "optionally its latency against a reference model timed in the same job "
                                   "(--against) or against samples stored with the baseline (same environment "
                                   "only). Exit 0 pass, 1 regression, 2 error. The verdict table is appended to "
                                   "$GITHUB_STEP_SUMMARY when that is set.")
    _add_model_args(p)
    p.add_argument("--baseline", metavar="FILE", help="baseline JSON written by --save")
    p.add_argument("--save", metavar="FILE", help="write a baseline of the model as it is now (atomically)")
    p.add_argument("--latency", action="store_true", help="with --save: store latency samples and the environment")
    p.add_argument("--tolerance", action="append", metavar="METRIC=REL",
                   help="relative limits, e.g. macs=0.01,params=0 or macs[conv.depthwise]=0.05 (default: exact)")
    p.add_argument("--allow-decrease", action="store_true", help="a metric that fell beyond its limit passes")
    p.add_argument("--cost-only", action="store_true", help="skip the latency samples stored in the baseline")
    p.add_argument("--predicted", action="store_true",
                   help="gate on predicted latency (deterministic); with --save: store it and the predictor's identity")
    p.add_argument("--predictor", default=None, metavar="FILE",
                   help="for --predicted: the predictor file (default: this environment's, else the roofline)")
    p.add_argument("--force", action="store_true", help="for --predicted: accept another predictor than the baseline's")
    p.add_argument("--against", metavar="SPEC", help="reference model timed in interleaved rounds in this job")
    p.add_argument("--threshold", type=_FLOAT, default=0.10,
                   help="latency: slowdown that counts, as a fraction (default 0.10)")
    p.add_argument("--alpha", type=_FLOAT, default=0.002, help="latency: Mann-Whitney p below this (default 0.002)")
    p.add_argument("--runtime", default="eager", help="latency: eager, compile[:MODE] or onnxruntime[:LEVEL]")
    p.add_argument("--device", default="cpu", help="latency: cpu or cuda")
    p.add_argument("--max-time", type=_FLOAT, default=None, help="latency: seconds of measurement (default 20)")
    p.add_argument("--all", action="store_true", help="show unchanged per-kind rows too")
    _add_timeout(p, CHECK_TIMEOUT)
    _add_common(p)
    p.set_defaults(func=_cmd_check)


# --- scale -----------------------------------------------------------------------------------------------

def _cmd_scale(args) -> int:
    from .scaling.options import ScaleOptions
    from .scaling.search import run_search
    from .shapes import parse_kwargs

    # only the flags given: every default lives in scaling/options.py
    given = {"family": args.family, "alpha": args.alpha, "beta": args.beta, "gamma": args.gamma, "phi": args.phi,
             "budget": args.budget, "tolerance": args.tolerance, "objective": args.objective,
             "executor": args.executor, "jobs": args.jobs, "log": args.log, "resume": args.resume or None,
             "constraint": args.constraint, "address": args.address, "family_kwargs": parse_kwargs(args.arg),
             "base_resolution": args.base_resolution, "resolution_multiple": args.resolution_multiple,
             "sweep": args.sweep, "keep_candidates": args.keep, "data": args.data, "steps": args.steps, "seeds": args.seeds,
             "batch_size": args.batch_size, "lr": args.lr, "optimizer": args.optimizer,
             "latency_time": args.latency_time, "latency_target_ms": args.latency_target,
             "reward_w": args.reward_w, "proxy": args.proxy, "proxy_batch": args.proxy_batch,
             "sweep_from": args.sweep_from, "threads": args.threads,
             "predictor": args.predictor, "confirm": args.confirm, "confirm_time": args.confirm_time,
             "predict_threads": args.threads,     # the predicted-latency target's threads too
             "predictor_force": args.force}
    options = ScaleOptions.from_kwargs(**{k: v for k, v in given.items() if v is not None})
    result = run_search(options, progress=not args.quiet)
    paths = []
    if args.plot:
        from .files import atomic_write_bytes, writable_dir
        from .report.plots import scale_plots

        folder = writable_dir(args.plot)
        paths = [atomic_write_bytes(folder / name, png, root=folder)
                 for name, png in scale_plots(result.to_dict()).items()]
    if args.json:
        d = result.to_dict()
        if paths:
            d["plots"] = [str(p) for p in paths]
        _emit_json(d)
    else:
        from .report.scale_tables import format_scale

        print(format_scale(result.to_dict(), top=args.top))
        from .report.predict_tables import format_scale_prediction

        extra = format_scale_prediction(result.to_dict())
        if extra:
            print("\n" + extra)
        for p in paths:
            print(f"plot: {p}")
    return 0


def _build_scale(sub) -> None:
    from .scaling.options import OPTIMIZERS
    from .scaling.options import BudgetOptions as B
    from .scaling.options import GridOptions as G
    from .scaling.options import LatencyOptions as L
    from .scaling.options import PredictedOptions as PR
    from .scaling.options import ProxyOptions as P
    from .scaling.options import TrainOptions as T

    p = sub.add_parser("scale", help="grid-search EfficientNet's compound coefficients α, β, γ under a budget",
                       description="Grid-search the compound-scaling coefficients (depth α, width β, resolution "
                                   "γ, Tan & Le 2019) under a cost budget, score the candidates, then scale the "
                                   "best up for φ = 0..7.")
    p.add_argument("--family", default=None,
                   help="zoo family (or named model as the base) or module:callable taking width, depth, "
                        f"resolution (default {G.family})")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="extra keyword argument for the builder")
    p.add_argument("--alpha", default=None, metavar="START:STOP:STEP", help="depth coefficients (1.0:1.4:0.05)")
    p.add_argument("--beta", default=None, metavar="START:STOP:STEP", help="width coefficients (1.0:1.25:0.05)")
    p.add_argument("--gamma", default=None, metavar="START:STOP:STEP", help="resolution coefficients (1.0:1.3:0.05)")
    p.add_argument("--phi", type=_FLOAT, default=None, help=f"compound coefficient φ of the search (default {G.phi:g})")
    p.add_argument("--budget", default=None,
                   help="2x (MACs ratio to the base; default 2^φ x), 0.8G / 800M (MACs), <=2x for a ceiling; "
                        "25ms / <=25ms: predicted latency (with --objective predicted-latency)")
    p.add_argument("--tolerance", type=_FLOAT, default=None,
                   help=f"relative tolerance of the budget and of α·β²·γ² (default {B.tolerance:g}: 2 ± 0.1)")
    p.add_argument("--constraint", choices=["cost", "formula", "both"], default=None,
                   help="what decides feasible: the real cost (default), the paper's formula, or both")
    p.add_argument("--objective", default=None,
                   help="cost (default) | latency | predicted-latency | train | proxy | python:module:function; "
                        "join with + "
                        "(train+latency scores with MnasNet's ACC·(LAT/T)^w)")
    p.add_argument("--executor", choices=["local", "process", "ray"], default=None,
                   help="where candidates run (default: local, or process with --jobs > 1)")
    p.add_argument("--jobs", type=_INT, default=None, help="parallel workers for process/ray")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")
    p.add_argument("--log", default=None, metavar="FILE", help="append every finished candidate here (JSONL)")
    p.add_argument("--resume", action="store_true", help="continue the search in --log, skipping finished work")
    p.add_argument("--sweep", default=None, metavar="PHIS",
                   help=f"φ values of the scale-up (default {G.sweep}; '' none)")
    p.add_argument("--keep", type=_INT, default=None, metavar="N",
                   help=f"candidates the result keeps (default {G.keep_candidates:,}): a larger grid, up to "
                        f"{G.max_candidates:,}, is streamed, keeping the first N of the ranking, the Pareto "
                        "front and the paper's point")
    p.add_argument("--sweep-from", default=None, metavar="WHICH",
                   help="coefficients of the scale-up: best (default), paper (1.2,1.1,1.15) or A,B,G")
    p.add_argument("--base-resolution", type=_INT, default=None, help="the base's resolution (default the family's)")
    p.add_argument("--resolution-multiple", type=_INT, default=None,
                   help="round scaled resolutions to a multiple of this (default 1: nearest pixel, half up)")
    g = p.add_argument_group("objective options")
    g.add_argument("--data", default=None, help="train: an image folder (root/class/img) or .npz with x and y")
    g.add_argument("--steps", type=_INT, default=None, help=f"train: steps per seed (default {T.steps})")
    g.add_argument("--seeds", default=None,
                   help=f"train: seeds, comma-separated (default {','.join(map(str, T.seeds))})")
    g.add_argument("--batch-size", type=_INT, default=None, help=f"train: batch size (default {T.batch_size})")
    g.add_argument("--lr", type=_FLOAT, default=None, help=f"train: learning rate (default {T.lr:g})")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    g.add_argument("--latency-time", type=_FLOAT, default=None,
                   help=f"latency: seconds per candidate (default {L.latency_time:g})")
    g.add_argument("--latency-target", type=_FLOAT, default=None, metavar="MS",
                   help="reward: target latency T in ms (default: base latency × budget ratio)")
    g.add_argument("--reward-w", type=_number(float, signed=True), default=None, help=f"reward: exponent w (default {L.reward_w:g})")
    g.add_argument("--proxy", choices=["naswot", "synflow", "grad_norm"], default=None,
                   help="proxy: which zero-cost proxy is the score (EXPERIMENTAL)")
    g.add_argument("--proxy-batch", type=_INT, default=None, help=f"proxy: minibatch size (default {P.proxy_batch})")
    g.add_argument("--predictor", default=None, metavar="FILE",
                   help="predicted-latency: the predictor file (default: the one calibrated for this environment)")
    g.add_argument("--confirm", type=_INT, default=None, metavar="K",
                   help=f"predicted-latency: time the K best to confirm (default {PR.confirm}; 0: none)")
    g.add_argument("--confirm-time", type=_FLOAT, default=None, metavar="S",
                   help=f"predicted-latency: seconds of timing per confirmed candidate (default {PR.confirm_time:g})")
    g.add_argument("--force", action="store_const", const=True, default=None,
                   help="predicted-latency: use a predictor from another environment")
    g.add_argument("--threads", type=_INT, default=None,
                   help="torch threads for train/proxy/latency and the predicted-latency target (default: torch's, "
                        "or cores / jobs in workers)")
    p.add_argument("--plot", default=None, metavar="DIR", help="write the Pareto, feasibility and φ plots here")
    p.add_argument("--top", type=_INT, default=15, help="rows of the ranked table (default 15)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_scale)


# --- calibrate -------------------------------------------------------------------------------------------

def _cmd_calibrate(args) -> int:
    from .predict import calibrate
    from .predict.calibrate import DEFAULT_MAX_TIME_S, DEFAULT_MODELS, DEFAULT_REDRAWS, QUICK_MAX_TIME_S
    from .report.predict_tables import format_calibration

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(DEFAULT_MODELS)
    result = calibrate(device=args.device, runtime=args.runtime, dtype=args.dtype, threads=args.threads,
                       batch=args.batch, max_time=args.max_time if args.max_time is not None
                       else (QUICK_MAX_TIME_S if args.quick else DEFAULT_MAX_TIME_S), out=args.out, models=models,
                       redraws=() if args.quick else DEFAULT_REDRAWS, restart=args.restart,
                       clock=args.clock, progress=not args.quiet)
    if args.json:
        _emit_json(result.to_dict())
    else:
        print(format_calibration(result))
    return 0


def _build_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="measure this machine's op latencies and write a latency predictor",
                       description="Time every distinct op configuration of the calibration zoo models alone "
                                   "(replayed on real tensors) and the models whole, fit the per-op latency "
                                   "model and write the predictor file (JSON) that `scaleprof predict` uses. "
                                   "A killed calibration resumes from its journal (<out>.journal.jsonl) when "
                                   "started again with the same target.")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--runtime", default="eager", help="eager (the only one calibrated so far)")
    p.add_argument("--dtype", default="float32", help="float32 (default), float16, bfloat16, float64")
    p.add_argument("--threads", type=_INT, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--batch", type=_INT, default=1, help="batch size of the calibration models (default 1)")
    p.add_argument("--max-time", type=_FLOAT, default=None,
                   help="seconds for the whole calibration (default 420; 90 with --quick)")
    p.add_argument("--quick", action="store_true", help="the calibration models only, no redrawn sizes")
    p.add_argument("--models", default=None, help="calibration zoo models, comma-separated")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="predictor file (default: $XDG_CACHE_HOME/scaleprof/predictors/<fingerprint>-<target>.json)")
    p.add_argument("--restart", action="store_true", help="discard an interrupted calibration's journal")
    p.add_argument("--clock", choices=["auto", "wall", "thread"], default="auto",
                   help="what times a block: thread CPU time (auto with --threads 1 on cpu: other processes "
                        "slow it far less than the wall clock), else the wall clock")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_calibrate)


# --- predict ---------------------------------------------------------------------------------------------

def _cmd_predict(args) -> int:
    from .predict import predict
    from .report.predict_tables import format_prediction

    result = predict(args.spec, inputs=args.input, knobs=_knobs(args), device=args.device, runtime=args.runtime,
                     dtype=args.dtype, threads=args.threads, predictor=args.predictor, force=args.force)
    if args.json or args.format == "json":
        _emit_json(result.to_dict())
        return 0
    for n in result.notices:
        print(f"scaleprof predict: notice: {n}", file=sys.stderr)
    print(format_prediction(result, by=args.by, level=args.level, fmt=args.format))
    return 0


def _build_predict(sub) -> None:
    p = sub.add_parser("predict", help="predicted latency from the count, without running the model",
                       description="Count the model on meta tensors (no weights) and predict each op's latency "
                                   "with the predictor calibrated for this environment and target (`scaleprof "
                                   "calibrate`); with none, the roofline alone with seeded peaks.")
    _add_model_args(p)
    p.add_argument("--device", default="cpu", help="the target device: cpu (default) or cuda")
    p.add_argument("--runtime", default="eager", help="the target runtime: eager")
    p.add_argument("--threads", type=_INT, default=None, help="the target's torch threads (default: torch's)")
    p.add_argument("--predictor", default=None, metavar="FILE", help="predictor file (default: this environment's)")
    p.add_argument("--force", action="store_true", help="use a predictor calibrated in another environment")
    p.add_argument("--by", choices=["kind", "module", "layer"], default="kind")
    p.add_argument("--level", type=_INT, default=2, help="module tree depth for --by module")
    p.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_predict)


# --- export ----------------------------------------------------------------------------------------------

def _cmd_export(args) -> int:
    from .bench.export import ExportOptions, export

    options = ExportOptions(opset=args.opset, dynamic_batch=args.dynamic_batch, exporter=args.exporter,
                            tolerance=args.tolerance, check=not args.no_check)
    result = export(args.spec, args.out, inputs=args.input, dtype=args.dtype, knobs=_knobs(args), options=options,
                    web=args.web, progress=True)
    if args.json:
        _emit_json(result.to_dict())
    else:
        print(f"wrote {result.path} ({result.bytes:,} bytes, {result.exporter} exporter, opset {result.opset}, "
              f"inputs {', '.join(result.inputs)}{', dynamic batch' if result.dynamic_batch else ''})")
        for c in result.checks:
            print(f"onnxruntime against eager at batch {c.batch_size}: max |diff| {c.max_abs_diff:.3g}, "
                  f"{c.max_rel_diff:.2g} of the largest |output| ({c.max_ref:.3g}): "
                  f"{'ok' if c.ok else 'BEYOND TOLERANCE'}")
        if result.web:
            print(f"wrote the page in {result.web['dir']}: serve it (python -m http.server -d {result.web['dir']}) "
                  f"and open http://127.0.0.1:8000/; `scaleprof bench SPEC --runtime web` times it in headless Chromium")
    if not result.ok():
        print(f"scaleprof export: error: the export differs from eager by {result.max_rel_diff:.3g} of the "
              f"largest output (max |diff| {result.max_abs_diff:.3g}), beyond --tolerance {options.tolerance:g}",
              file=sys.stderr)
        return 2
    return 0


def _build_export(sub) -> None:
    p = sub.add_parser("export", help="ONNX file (and a browser page) of a model, checked against eager",
                       description="Export a model to ONNX, run it in ONNX Runtime against eager PyTorch on the "
                                   "same inputs (max abs difference; exit 2 beyond the tolerance); with --web, "
                                   "also a self-contained page that times it with onnxruntime-web.")
    _add_model_args(p)
    p.add_argument("--out", "-o", default=None, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument("--web", default=None, metavar="DIR",
                   help="write DIR/model.onnx beside index.html + JS that time it with onnxruntime-web (WebAssembly)")
    p.add_argument("--opset", type=_INT, default=None, help="ONNX opset (default: the exporter's)")
    p.add_argument("--dynamic-batch", action="store_true", help="make the leading (batch) dimension symbolic")
    p.add_argument("--exporter", choices=["auto", "dynamo", "torchscript"], default="auto",
                   help="torch.onnx exporter (auto: dynamo, then torchscript)")
    p.add_argument("--tolerance", type=_FLOAT, default=1e-4,
                   help="largest difference from eager, as a fraction of the largest |output| (default 1e-4)")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime check against eager")
    _add_timeout(p)
    _add_common(p)
    p.set_defaults(func=_cmd_export)


# One builder per verb; each verb's parser and command live together above.
_BUILDERS = [_build_profile, _build_zoo, _build_bench, _build_compare, _build_report, _build_check, _build_scale,
             _build_calibrate, _build_predict, _build_export]


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's contract for bad input: exit 2 and one line on stderr (not the usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scaleprof", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for b in _BUILDERS:
        b(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"scaleprof {version('scaleprof')}"
    except PackageNotFoundError:
        return "scaleprof (not installed)"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line error (_Parser.error)
        return 2 if exc.code not in (0, None) else 0
    _STDOUT.append(sys.stdout)
    try:
        return _run_verb(args, debug)
    finally:
        _STDOUT.pop()


def _run_verb(args, debug: bool) -> int:
    """The one place a verb runs: every way out is an exit code and at most one line on stderr."""
    from .deadline import TimedOut, deadline

    try:
        with contextlib.redirect_stdout(sys.stderr), deadline(getattr(args, "timeout", None), args.verb):
            code = int(args.func(args) or 0)   # the user's prints go to stderr; ours to _stdout()
        with _to_stdout() as out:
            out.flush()     # a closed pipe shows here, not in the interpreter's last flush
        return code
    except (ScaleprofError, TimedOut) as exc:
        if debug:
            traceback.print_exc()
        print(f"scaleprof {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"scaleprof {args.verb}: interrupted", file=sys.stderr)
        return 130   # 128 + SIGINT, as shells report it
    except _ReaderGone:
        # the reader went away (`scaleprof zoo | head`): end quietly, as Unix tools do; stdout points at
        # devnull so that the interpreter's last flush does not complain either
        _silence_stdout()
        return 0
    except SystemExit as exc:   # the user's code called sys.exit(): a failure, never a silent pass
        if debug:
            traceback.print_exc()
        print(f"scaleprof {args.verb}: error: the model's code called sys.exit({exc.code!r})", file=sys.stderr)
        return 2
    except Exception as exc:  # never a bare traceback without --debug
        if debug:
            traceback.print_exc()
        print(f"scaleprof {args.verb}: error: {one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, _stdout().fileno())
    except (OSError, ValueError, AttributeError):   # a stream without a file descriptor (a test's capture)
        pass


if __name__ == "__main__":
    sys.exit(main())
