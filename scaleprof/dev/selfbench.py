"""`make bench`: scaleprof's own speed against its peers -> reports/performance.md.

    python -m scaleprof.dev.selfbench --out reports [--only counting,measurement,scaling] [--force]

Sections, each run on its own and guarded, so a section that fails (an import included) is reported in the
page rather than stopping the others; each module's ``run_selfbench(out_dir=...)`` returns its Markdown:

- counting: how fast scaleprof counts against fvcore, thop and torch (scaleprof.dev.counting_speed)
- measurement: the timer's overhead, agreement with torch.utils.benchmark, spread (scaleprof.dev.selfbench_measure)
- scaling: the scaling search's throughput and executors (scaleprof.dev.scaling_speed)

A finished section's Markdown is kept under ``out/.performance/``; a rerun reuses it (``--force`` redoes
it), and performance.md is rewritten (atomically) after every section, so an interrupted run leaves a whole
page of what was done. Exit 0 when a section asked for is on the page, 2 when every one failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

from ..errors import one_line
from ..files import atomic_write_text
from .driver import Store, add_target_args, select_targets

SECTIONS = {
    "counting": ("scaleprof.dev.counting_speed", "Counting speed"),
    "measurement": ("scaleprof.dev.selfbench_measure", "Measurement"),
    "scaling": ("scaleprof.dev.scaling_speed", "Scaling search"),
}


def _log(msg: str) -> None:
    print(f"selfbench: {msg}", file=sys.stderr, flush=True)


def run_section(name: str, out_dir: Path) -> dict:
    """{name, status: ok | failed, markdown, seconds, reason}: never raises for the section's sake."""
    module_name, _title = SECTIONS[name]
    t0 = time.perf_counter()
    try:
        md = importlib.import_module(module_name).run_selfbench(out_dir=str(out_dir))
        if not isinstance(md, str):
            raise TypeError(f"run_selfbench returned {type(md).__name__}, not Markdown text")
        return {"name": name, "status": "ok", "markdown": md, "seconds": time.perf_counter() - t0, "reason": None}
    except Exception as exc:
        tb = traceback.format_exc(limit=3)
        return {"name": name, "status": "failed", "markdown": "", "seconds": time.perf_counter() - t0,
                "reason": one_line(exc), "traceback": tb}


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
    from ..report.sections import made_by_sentence

    lines = ["# Performance: scaleprof against its peers", "",
             "Built by `make bench` (`python -m scaleprof.dev.selfbench --out reports`). Each section is a ratio "
             "measured in one run on this machine; the machine is small and shared, so read ratios, not absolute "
             "times.", "", f"Made by {made_by_sentence()}.", ""]
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
    p = argparse.ArgumentParser(prog="python -m scaleprof.dev.selfbench", description=__doc__.splitlines()[0])
    add_target_args(p, SECTIONS, out_help="folder for performance.md", force_help="rerun sections that finished before")
    opts = p.parse_args(argv)
    picked = select_targets("selfbench", opts, SECTIONS, "section")
    if isinstance(picked, int):
        return picked
    names, out = picked
    store = Store(out, data=".performance")  # --force reruns what is asked for; the rest stays on the page
    results = {name: r for name in SECTIONS if (r := store.get(name)) is not None}
    path = None
    for name in names:
        done = results.get(name)
        if done and done.get("status") == "ok" and not opts.force:
            _log(f"{name}: done before, kept (--force to rerun)")
            continue
        _log(f"{name}: running ...")
        r = run_section(name, out)
        results[name] = r
        store.put(name, r)
        _log(f"{name}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else f" in {r['seconds']:.0f} s"))
        path = atomic_write_text(out / "performance.md", render(results))
    if path is None:  # every section kept from before: the page is still rewritten with this run's header
        path = atomic_write_text(out / "performance.md", render(results))
    _log(f"wrote {path}")
    from .build_reports import write_index

    write_index(out)
    return 0 if any(results[n].get("status") == "ok" for n in names) else 2


if __name__ == "__main__":
    sys.exit(main())
