"""`scaleprof report`: JSON results of profile, bench, compare and scale runs -> a Markdown report (figures as
PNG files beside it) and a self-contained HTML page (figures inline as base64), in one folder.

Everything is rendered in memory first; files are then written each to a temporary name and renamed, so a
failure (a malformed input, an unwritable folder) leaves no half-written report behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..detect import require_kind
from ..errors import ScaleprofError
from ..files import atomic_write_bytes, atomic_write_text, read_json, writable_dir
from . import sections
from .document import Document, Para, literal, to_html, to_markdown

FIGURE_DIR = "figures"


@dataclass
class ReportPaths:
    markdown: Path
    html: Path
    figures: list[Path] = field(default_factory=list)
    inputs: list[dict] = field(default_factory=list)   # [{source, kind}]

    def to_dict(self) -> dict:
        return {"markdown": str(self.markdown), "html": str(self.html), "figures": [str(f) for f in self.figures],
                "inputs": self.inputs}


def _inert(obj):
    """Every string value of a result made inert (document.literal): a model name such as
    ``[x](javascript:...)`` in a hostile file is text in both the Markdown and the HTML, never a link."""
    if isinstance(obj, str):
        return literal(obj)
    if isinstance(obj, dict):
        return {k: _inert(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_inert(v) for v in obj]
    return obj


def load_results(items) -> list[tuple[str, str, object]]:
    """[(source, kind, obj)] from paths and/or dicts; a file of no known kind is a one-line error."""
    if isinstance(items, (str, os.PathLike, dict)):
        items = [items]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (str, os.PathLike)):
            source = str(item)
            obj = read_json(item, "result file")
        elif isinstance(item, (dict, list)):
            source = f"input {i + 1}"
            obj = item
        elif hasattr(item, "to_dict"):
            source = f"input {i + 1}"
            obj = item.to_dict()
        else:
            raise ScaleprofError(f"input {i + 1}: expected a JSON file path or a result dict, got "
                                 f"{type(item).__name__}")
        out.append((source, require_kind(obj, source), _inert(obj)))
    if not out:
        raise ScaleprofError("no result files given")
    return out


def _document(loaded, title: str | None) -> Document:
    doc = Document(title or "scaleprof report")
    doc.add(Para("Built from " + ", ".join(f"{k} (`{os.path.basename(s)}`)" for s, k, _ in loaded) + "."))
    profiles = [obj for _, k, obj in loaded if k == "profile"]
    if len(profiles) > 1:
        doc.add(*sections.profiles_overview(profiles))
    for source, kind, obj in loaded:
        try:
            doc.add(*sections.BUILDERS[kind](obj, source))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # the keys said which kind; a value of the wrong shape inside is still bad input
            raise ScaleprofError(f"{source}: malformed {kind} result ({type(exc).__name__}: {exc})") from None
    doc.add(*sections.made_by())
    return doc


def _unique_names(doc: Document) -> None:
    seen: dict[str, int] = {}
    for f in doc.figures():
        n = seen.get(f.name, 0)
        seen[f.name] = n + 1
        if n:
            f.name = f"{f.name}-{n + 1}"


def write_document(doc: Document, out_dir, stem: str = "report", figure_dir: str = FIGURE_DIR) -> ReportPaths:
    """Write ``stem``.md, ``stem``.html and the figures under ``out_dir`` (each file written atomically)."""
    return _write(doc, writable_dir(out_dir), stem, figure_dir)


def _write(doc: Document, out: Path, stem: str = "report", figure_dir: str = FIGURE_DIR) -> ReportPaths:
    _unique_names(doc)
    md = to_markdown(doc, figure_dir)
    page = to_html(doc)
    figs: list[Path] = []
    for f in doc.figures():
        figs.append(atomic_write_bytes(out / figure_dir / f"{f.name}.png", f.png, root=out))
    md_path = atomic_write_text(out / f"{stem}.md", md, root=out)
    html_path = atomic_write_text(out / f"{stem}.html", page, root=out)
    return ReportPaths(markdown=md_path, html=html_path, figures=figs)


def write_report(json_paths_or_dicts, out_dir, title: str | None = None) -> ReportPaths:
    """Detect each result's kind from its keys, build the report, write report.md, report.html, figures/.

    Returns the paths written. Bad input (missing or malformed file, a file of no known kind, an
    unwritable folder) raises ScaleprofError before anything is written.
    """
    loaded = load_results(json_paths_or_dicts)
    out = writable_dir(out_dir)  # fail before the plotting work, not after
    paths = _write(_document(loaded, title), out)
    paths.inputs = [{"source": s, "kind": k} for s, k, _ in loaded]
    return paths


__all__ = ["ReportPaths", "load_results", "write_document", "write_report"]
