"""`make bench`: scaleprof's own speed against its peers -> reports/performance.md.

    python -m scaleprof.report.selfbench --out reports [--only counting,measurement,scaling] [--force]

Sections, each run on its own and guarded, so a section that is missing or fails is reported in the page
rather than stopping the others:

- counting: how fast scaleprof counts against fvcore, thop and torch (scaleprof.bench.counting_speed)
- measurement: the timer's overhead, agreement with torch.utils.benchmark, spread (scaleprof.bench.selfbench_measure)
- scaling: the scaling search's throughput and executors (scaleprof.scaling.selfbench)

A finished section's Markdown is kept under ``out/.performance/``; a rerun reuses it (``--force`` redoes
it), and performance.md is rewritten (atomically) after every section, so an interrupted run leaves a whole
page of what was done.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import time
import traceback
from pathlib import Path

from ..errors import ScaleprofError
from .files import atomic_write_json, atomic_write_text, read_json, writable_dir

SECTIONS = {
    "counting": ("scaleprof.bench.counting_speed", "Counting speed"),
    "measurement": ("scaleprof.bench.selfbench_measure", "Measurement"),
    "scaling": ("scaleprof.scaling.selfbench", "Scaling search"),
}


def _log(msg: str) -> None:
    print(f"selfbench: {msg}", file=sys.stderr, flush=True)


def _call(fn, out_dir: Path) -> str:
    """run_selfbench() takes the output folder in some sections and nothing in others."""
    params = inspect.signature(fn).parameters
    if "out_dir" in params:
        return fn(out_dir=str(out_dir))
    if params and next(iter(params.values())).kind in (inspect.Parameter.POSITIONAL_ONLY,
                                                       inspect.Parameter.POSITIONAL_OR_KEYWORD) \
            and next(iter(params.values())).default is inspect.Parameter.empty:
        return fn(str(out_dir))
    return fn()


def run_section(name: str, out_dir: Path) -> dict:
    """{name, status: ok | missing | failed, markdown, seconds, reason}: never raises for the section's sake."""
    module_name, title = SECTIONS[name]
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        fn = module.run_selfbench
    except (ImportError, AttributeError) as exc:
        return {"name": name, "status": "missing", "markdown": "", "seconds": 0.0,
                "reason": f"{module_name}.run_selfbench is not available ({type(exc).__name__}: {exc})"}
    try:
        md = _call(fn, out_dir)
        if not isinstance(md, str):
            raise TypeError(f"run_selfbench returned {type(md).__name__}, not Markdown text")
        return {"name": name, "status": "ok", "markdown": md, "seconds": time.perf_counter() - t0, "reason": None}
    except Exception as exc:
        tb = traceback.format_exc(limit=3)
        first = (str(exc).strip().splitlines() or [""])[0]
        return {"name": name, "status": "failed", "markdown": "", "seconds": time.perf_counter() - t0,
                "reason": f"{type(exc).__name__}: {first}", "traceback": tb}


def _env_line() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from ..bench.env import environment
    from .sections import env_sentence

    try:
        v = version("scaleprof")
    except PackageNotFoundError:
        v = "(not installed)"
    return f"Made by scaleprof {v} on {env_sentence(environment())}."


def _demote(md: str) -> str:
    """A section written as a page of its own (an h1) goes one level down: the page has one title."""
    lines = md.splitlines()
    if not any(line.startswith("# ") for line in lines):
        return md
    in_code = False
    out = []
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        out.append("#" + line if not in_code and line.startswith("#") else line)
    return "\n".join(out)


def render(results: dict[str, dict]) -> str:
    lines = ["# Performance: scaleprof against its peers", "",
             "Built by `make bench` (`python -m scaleprof.report.selfbench --out reports`). Each section is a ratio "
             "measured in one run on this machine; the machine is small and shared, so read ratios, not absolute "
             "times.", "", _env_line(), ""]
    for name, (_module_name, title) in SECTIONS.items():
        r = results.get(name)
        if r is None:
            lines += [f"## {title}", "", "Not run in this build.", ""]
        elif r["status"] == "ok":
            md = _demote(r["markdown"].strip())
            if not md.lstrip().startswith("#"):
                lines += [f"## {title}", ""]
            lines += [md, "", f"*({r['seconds']:.0f} s)*", ""]
        else:
            lines += [f"## {title}", "", f"**Not available: {r['status']}.** {r['reason']}", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m scaleprof.report.selfbench", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="folder for performance.md (default: reports)")
    p.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(SECTIONS)}")
    p.add_argument("--force", action="store_true", help="rerun sections that finished before")
    opts = p.parse_args(argv)
    names = [n.strip() for n in opts.only.split(",")] if opts.only else list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"selfbench: error: unknown section {', '.join(unknown)}; choose from {', '.join(SECTIONS)}",
              file=sys.stderr)
        return 2
    try:
        out = writable_dir(opts.out)
        cache = writable_dir(out / ".performance")
    except ScaleprofError as exc:
        print(f"selfbench: error: {exc}", file=sys.stderr)
        return 2
    results: dict[str, dict] = {}
    for name in SECTIONS:  # sections done earlier and not asked for now still belong on the page
        f = cache / f"{name}.json"
        if f.is_file():
            try:
                results[name] = read_json(f)
            except ScaleprofError:
                pass
    for name in names:
        done = results.get(name)
        if done and done.get("status") == "ok" and not opts.force:
            _log(f"{name}: done before, kept (--force to rerun)")
            continue
        _log(f"{name}: running ...")
        r = run_section(name, out)
        results[name] = r
        atomic_write_json(cache / f"{name}.json", r)
        _log(f"{name}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else f" in {r['seconds']:.0f} s"))
        atomic_write_text(out / "performance.md", render(results))
    path = atomic_write_text(out / "performance.md", render(results))
    _log(f"wrote {path}")
    from .build_reports import write_index

    write_index(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
