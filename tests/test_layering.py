"""The floors of ARCHITECTURE.md, read from the sources. Direction: cli -> report -> {gate, scaling} ->
predict -> bench -> counting -> layers; zoo -> layers; spec.py (the loader) above the zoo; every room may use
the base (errors, shapes, files, detect, runlog, meta_init, deadline, callable_package). dev sits beside cli and may use anything; nothing
imports dev or cli; nothing inside the package imports itself by its absolute name. A new import against it
fails here, naming the file."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import scaleprof

ROOT = Path(scaleprof.__file__).parent
REPO = ROOT.parent
BASE = {"errors", "shapes", "files", "detect", "runlog", "meta_init", "no_dynamo", "no_sympy", "deadline", "callable_package",
        "__version__"}
# each room (a package or a top-level module) and the rooms it may import
ALLOWED = {
    **{m: BASE for m in BASE - {"__version__"}},
    "layers": BASE,
    "zoo": BASE | {"layers"},
    "hf": BASE,
    "spec": BASE | {"zoo", "hf"},
    "counting": BASE | {"spec", "layers"},
    "bench": BASE | {"spec", "counting", "layers"},
    "predict": BASE | {"spec", "bench", "counting"},
    "scaling": BASE | {"spec", "predict", "bench", "counting", "zoo"},
    "gate": BASE | {"spec", "predict", "bench", "counting"},
    "catalog": BASE | {"zoo", "counting"},
    "report": BASE | {"gate", "scaling", "predict", "bench", "counting"},
    "__init__": BASE | {"spec", "counting"},   # the package face: profile, load_model, the lazy names
    "cli": None,                                # anything but dev
    "dev": None,                                # anything but cli
}
# report/ renders: none of these, not even through a room it may otherwise use
REPORT_MUST_NOT_IMPORT = ("zoo", "spec", "api", "bench.runner", "bench.compare", "bench.timer", "scaling.search",
                          "counting.profile", "counting.recorder")
NOBODY_IMPORTS = {"cli", "dev"}

# (file, what it imports): imports against the direction, each with its reason. "scaleprof" is an absolute
# import of the package by itself.
EXCEPTIONS = {
    # the memory child's import-only baseline imports what a zoo spec's run imports, so that the figure
    # is the model's memory and not the zoo's code
    ("bench/memory.py", "zoo"),
    ("bench/memory.py", "hf"),     # likewise transformers, for an hf: spec
}


def _imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every scaleprof module a file imports, dotted and relative to the package ("bench.runner"; a name
    imported from a package is given both ways: "counting" and "counting.profile"), relative imports
    resolved; an absolute import of the package (``import scaleprof``, ``from scaleprof.x import y``) is
    also reported as "scaleprof"."""
    rel = path.relative_to(root).parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "scaleprof":
                    continue
                out.add("scaleprof")
                full = parts[1:]
            else:
                pkg = list(rel[:-1])[: len(rel) - node.level]
                full = pkg + (node.module.split(".") if node.module else [])
            if full:
                out.add(".".join(full))
            out.update(".".join([*full, a.name]) for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "scaleprof":
                    out.add("scaleprof")
                    if len(parts) > 1:
                        out.add(".".join(parts[1:]))
    return out


def _room(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _rooms(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def _sources():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        yield rel, _room(rel), _imported_modules(path)


def test_every_room_has_a_floor():
    rooms = {_room(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")}
    assert rooms <= set(ALLOWED), f"rooms with no place in ALLOWED: {sorted(rooms - set(ALLOWED))}"


def test_imports_follow_the_design_direction():
    wrong = []
    for rel, top, modules in _sources():
        allowed = ALLOWED.get(top)
        for pkg in _rooms(modules) - {top, "scaleprof"}:
            if (rel.as_posix(), pkg) in EXCEPTIONS:
                continue
            if pkg in NOBODY_IMPORTS or (allowed is not None and pkg not in allowed):
                wrong.append(f"{rel.as_posix()} imports {pkg}")
    assert not wrong, "; ".join(wrong)


def test_nothing_inside_the_package_imports_scaleprof():
    wrong = [rel.as_posix() for rel, _, modules in _sources()
             if "scaleprof" in modules and (rel.as_posix(), "scaleprof") not in EXCEPTIONS]
    assert not wrong, f"absolute `import scaleprof` inside the package (use a relative import): {wrong}"


def test_report_renders_only():
    wrong = []
    for rel, top, modules in _sources():
        if top != "report":
            continue
        for bad in REPORT_MUST_NOT_IMPORT:
            if bad in modules or any(m.startswith(bad + ".") for m in modules):
                wrong.append(f"{rel.as_posix()} imports {bad}")
    assert not wrong, "; ".join(wrong)


def test_builders_live_in_dev():
    # report/ has no entry point of its own, and `make bench` / `make reports` run dev's
    for path in (ROOT / "report").rglob("*.py"):
        assert "__main__" not in path.read_text(), f"{path.relative_to(ROOT)} is an entry point"
    make = (REPO / "Makefile").read_text()
    targets = dict(re.findall(r"^(bench|reports): .*\n\t(.*)$", make, re.M))
    assert set(targets) == {"bench", "reports"}
    assert all("-m scaleprof.dev." in cmd for cmd in targets.values()), targets


def test_the_reader_resolves_every_import_form(tmp_path):
    (tmp_path / "counting").mkdir()
    src = tmp_path / "counting" / "x.py"
    src.write_text("from ..bench import runner\nfrom . import formulas\nfrom .. import zoo\n"
                   "from ..bench.stats import median\nimport torch\n")
    assert _imported_modules(src, tmp_path) == {"bench", "bench.runner", "counting", "counting.formulas", "zoo",
                                                "bench.stats", "bench.stats.median"}
    src.write_text("from scaleprof.report import tables\nimport scaleprof.cli\n")
    assert _imported_modules(src, tmp_path) == {"scaleprof", "report", "report.tables", "cli"}
    src.write_text("def f():\n    import scaleprof\n    return scaleprof.profile\n")
    assert _imported_modules(src, tmp_path) == {"scaleprof"}
    src.write_text("from scaleprof import errors\n")
    assert _rooms(_imported_modules(src, tmp_path)) == {"scaleprof", "errors"}
