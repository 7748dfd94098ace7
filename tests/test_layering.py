"""The dependency direction of ../shared/design.md, read from the sources: cli -> report -> scaling ->
{bench, counting, zoo}; bench -> counting; counting never imports bench, scaling or report; nothing imports
cli. A new import against it fails here, naming the file."""

from __future__ import annotations

import ast
from pathlib import Path

import scaleprof

ROOT = Path(scaleprof.__file__).parent
BASE = {"errors", "spec", "meta_init", "no_dynamo", "runlog", "__version__"}   # leaf modules any layer may use
ALLOWED = {
    "layers": {"errors"},
    "zoo": BASE | {"layers"},
    "counting": BASE | {"layers"},
    "bench": BASE | {"counting"},
    "scaling": BASE | {"bench", "counting", "zoo"},
    "report": BASE | {"api", "bench", "counting", "scaling", "zoo"},
}
# (file, package): imports against the direction, each with its reason
EXCEPTIONS = {
    # the memory child's import-only baseline imports what a zoo spec's run imports, so that the figure
    # is the model's memory and not the zoo's code
    ("bench/memory.py", "zoo"),
}


def _imported_packages(path: Path, root: Path = ROOT) -> set[str]:
    """The scaleprof packages (or top-level modules) a file imports, relative imports resolved."""
    rel = path.relative_to(root).parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] != "scaleprof":
                    continue
                names = parts[1:2] or [a.name for a in node.names]
            else:
                pkg = list(rel[:-1])[: len(rel) - node.level]
                full = pkg + (node.module.split(".") if node.module else [])
                names = full[:1] or [a.name for a in node.names]
            out.update(names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("scaleprof."))
    return out


def test_imports_follow_the_design_direction():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        top = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for pkg in _imported_packages(path) - {top}:
            if pkg == "cli" or (top in ALLOWED and pkg not in ALLOWED[top]
                                and (rel.as_posix(), pkg) not in EXCEPTIONS):
                wrong.append(f"{rel.as_posix()} imports {pkg}")
    assert not wrong, "; ".join(wrong)


def test_the_reader_resolves_every_import_form(tmp_path):
    (tmp_path / "counting").mkdir()
    src = tmp_path / "counting" / "x.py"
    src.write_text("from ..bench import bench\nfrom . import formulas\nfrom .. import zoo\n"
                   "from scaleprof.report import tables\nimport scaleprof.cli\nfrom scaleprof import errors\n"
                   "import torch\n")
    assert _imported_packages(src, tmp_path) == {"bench", "counting", "zoo", "report", "cli", "errors"}
