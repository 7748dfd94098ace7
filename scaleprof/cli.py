"""`scaleprof <verb>`: a thin shell over the Python API.

Each verb parses its arguments, calls the API, and prints. `--json` puts machine-readable output alone on
stdout. Exit codes: 0 success, 1 a check found a regression, 2 bad input or a failure (one line on stderr;
the traceback only with --debug).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from .errors import ScaleprofError


def _emit_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _add_model_args(p: argparse.ArgumentParser, *, positional: str = "spec") -> None:
    p.add_argument(positional, help="zoo name, module:callable, file.py:callable, torchvision:NAME or timm:NAME")
    _add_knob_args(p)


def _add_knob_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", action="append", metavar="SHAPE",
                   help="input shape, e.g. 1x3x224x224 (repeatable; 1x128:int64 for integer inputs); "
                        "default: the zoo model's own resolution")
    p.add_argument("--dtype", default=None, help="float32 (default), float16, bfloat16, float64")
    p.add_argument("--width", type=float, default=None, help="zoo width multiplier")
    p.add_argument("--depth", type=float, default=None, help="zoo depth multiplier")
    p.add_argument("--resolution", type=int, default=None, help="zoo input resolution")
    p.add_argument("--arg", action="append", metavar="KEY=VALUE", help="keyword argument for a callable spec")


def _knobs(args) -> dict:
    from .spec import parse_kwargs

    knobs = {k: getattr(args, k) for k in ("width", "depth", "resolution") if getattr(args, k, None) is not None}
    knobs.update(parse_kwargs(getattr(args, "arg", None)))
    return knobs


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout, nothing else")
    p.add_argument("--debug", action="store_true", help="show tracebacks")


# --- profile ---------------------------------------------------------------------------------------------

def _cmd_profile(args) -> int:
    from .api import profile_spec
    from .report.tables import format_profile

    result = profile_spec(args.spec, inputs=args.input, dtype=args.dtype, device=args.device,
                          backward=args.backward, knobs=_knobs(args))
    crosscheck = None
    if args.crosscheck:
        from .counting.peers import crosscheck as run_crosscheck
        from .spec import load_model

        real = load_model(args.spec, device="cpu", **_knobs(args)).eval()
        crosscheck = run_crosscheck(real, result.inputs, ours=result)
    if args.json or args.format == "json":
        d = result.to_dict()
        if crosscheck is not None:
            d["crosscheck"] = crosscheck.to_dict()
        _emit_json(d)
        return 0
    print(format_profile(result, by=args.by, level=args.level, fmt=args.format))
    if crosscheck is not None:
        print()
        print(crosscheck.format(fmt=args.format))
    return 0


def _build_profile(sub) -> None:
    p = sub.add_parser("profile", help="count MACs, FLOPs, params, activations and bytes per layer and kind",
                       description="Count a model's cost on meta tensors (no weights allocated).")
    _add_model_args(p)
    p.add_argument("--device", default="meta", help="meta (default: no weights allocated), cpu or cuda")
    p.add_argument("--by", choices=["kind", "module", "op", "layer"], default="kind")
    # --depth is the zoo depth multiplier (issue 3), so the module-tree depth is --level.
    p.add_argument("--level", type=int, default=2, help="module tree depth for --by module")
    p.add_argument("--format", choices=["table", "json", "csv", "markdown"], default="table")
    p.add_argument("--backward", action="store_true", help="count the backward pass too")
    p.add_argument("--crosscheck", action="store_true", help="run fvcore, thop and torch's FlopCounterMode beside")
    _add_common(p)
    p.set_defaults(func=_cmd_profile)


# --- zoo -------------------------------------------------------------------------------------------------

def _cmd_zoo(args) -> int:
    from . import zoo
    from .report.tables import format_zoo

    rows = zoo.summary(with_cost=not args.no_cost)
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


# --- registration ----------------------------------------------------------------------------------------

# One builder per verb; each verb's parser and command live together above.
_BUILDERS = [_build_profile, _build_zoo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scaleprof", description=__doc__.splitlines()[0])
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
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return 2 if exc.code not in (0, None) else 0
    try:
        return int(args.func(args) or 0)
    except ScaleprofError as exc:
        if debug:
            traceback.print_exc()
        print(f"scaleprof {args.verb}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"scaleprof {args.verb}: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # never a bare traceback without --debug
        if debug:
            traceback.print_exc()
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"scaleprof {args.verb}: error: {type(exc).__name__}: {msg} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
