"""A report as data (headings, paragraphs, lists, tables, figures), rendered to Markdown and to one
self-contained HTML page.

Text is written in a small subset of Markdown (`code`, **bold**, [links](url)), which renders as is in
Markdown and is converted here for HTML, so one source gives both files. Figures are PNG bytes: files beside
the Markdown, base64 inside the HTML, so the page stands alone.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field

import pandas as pd


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    df: pd.DataFrame
    caption: str = ""
    index: bool = False


@dataclass
class Figure:
    name: str          # file name stem, unique in the document
    png: bytes
    caption: str = ""


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> Document:
        for b in blocks:
            if b is not None:
                self.blocks.append(b)
        return self

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]


# --- Markdown --------------------------------------------------------------------------------------------

def _md_cell(v) -> str:
    s = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
    return s.replace("|", "\\|").replace("\n", " ")


def md_table(df: pd.DataFrame, index: bool = False) -> str:
    """A pipe table, built here so that it does not depend on tabulate's formatting choices."""
    d = df.reset_index() if index else df
    cols = [str(c) for c in d.columns]
    num = [pd.api.types.is_numeric_dtype(d[c]) for c in d.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |",
             "|" + "|".join("---:" if n else "---" for n in num) + "|"]
    for row in d.itertuples(index=False):
        lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return "\n".join(lines)


def to_markdown(doc: Document, figure_dir: str = "figures") -> str:
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if isinstance(b, Heading):
            out += [f"{'#' * max(2, b.level)} {b.text}", ""]
        elif isinstance(b, Para):
            out += [b.text, ""]
        elif isinstance(b, Bullets):
            out += [f"- {i}" for i in b.items] + [""]
        elif isinstance(b, Table):
            if b.caption:
                out += [b.caption, ""]
            out += [md_table(b.df, b.index), ""]
        elif isinstance(b, Figure):
            out += [f"![{b.caption or b.name}]({figure_dir}/{b.name}.png)", ""]
            if b.caption:
                out += [f"*{b.caption}*", ""]
    return "\n".join(out).rstrip() + "\n"


# --- HTML ------------------------------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


# What `literal` escapes with a backslash, and inline_html reads back as the character itself.
_ACTIVE = "\\[]<>"
_ESCAPED = re.compile(r"\\([\\\[\]<>])")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_PLACEHOLDER = 0xE000   # private-use characters stand for escaped ones while the markup is read


def literal(text: str) -> str:
    """A string that came from a file, made inert in the Markdown subset: no link, no HTML. The loader of
    result files (writer.load_results) passes every string value through this."""
    return "".join("\\" + c if c in _ACTIVE else c for c in text)


def safe_href(url: str) -> str | None:
    """``url`` when a report may link to it: http(s) or relative; None for any other scheme (javascript:,
    data:, file:, ...)."""
    m = _SCHEME.match(url.strip())
    return url if m is None or m.group(1).lower() in ("http", "https") else None


def _link(m: re.Match) -> str:
    text, url = m.group(1), html.unescape(m.group(2))
    href = safe_href(url)
    if href is None:   # shown, not followed
        return f"[{text}]({html.escape(url, quote=False)})"
    return f'<a href="{html.escape(href)}">{text}</a>'


def inline_html(text: str) -> str:
    """The Markdown subset used in report text -> HTML (everything else escaped; links only to http(s) or
    relative addresses; a backslash-escaped character is literal)."""
    parts = _CODE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # inside backticks: literal
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        s = _ESCAPED.sub(lambda m: chr(_PLACEHOLDER + _ACTIVE.index(m.group(1))), part)
        s = html.escape(s, quote=False)
        s = _BOLD.sub(r"<strong>\1</strong>", s)
        s = _LINK.sub(_link, s)
        for k, c in enumerate(_ACTIVE):
            s = s.replace(chr(_PLACEHOLDER + k), html.escape(c))
        out.append(s)
    return "".join(out)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1500px;
       padding: 0 1em; color: #1d1d1f; line-height: 1.45; }
h1 { border-bottom: 2px solid #333; padding-bottom: .2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; }
th { background: #eef1fb; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.wide { overflow-x: auto; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { font-size: 13px; color: #555; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.caption { font-size: 13px; color: #444; margin-bottom: 0; }
"""


_NUMERIC = re.compile(r"^[+-]?[\d,]*\.?\d+( ?%|×|x)?$")


def html_table(df: pd.DataFrame, index: bool = False) -> str:
    d = df.reset_index() if index else df
    num = [pd.api.types.is_numeric_dtype(d[c]) for c in d.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in d.columns)
    rows = []
    for row in d.itertuples(index=False):
        cells = []
        for v, n in zip(row, num, strict=True):
            s = "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
            numeric = n or bool(_NUMERIC.match(s))  # formatted numbers are strings: align them all the same
            cells.append(f'<td class="num">{html.escape(s)}</td>' if numeric else f"<td>{inline_html(s)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</div>")


def to_html(doc: Document) -> str:
    body = [f"<h1>{inline_html(doc.title)}</h1>"]
    for b in doc.blocks:
        if isinstance(b, Heading):
            lv = min(6, max(2, b.level))
            body.append(f"<h{lv}>{inline_html(b.text)}</h{lv}>")
        elif isinstance(b, Para):
            body.append(f"<p>{inline_html(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            if b.caption:
                body.append(f'<p class="caption">{inline_html(b.caption)}</p>')
            body.append(html_table(b.df, b.index))
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            cap = f"<figcaption>{inline_html(b.caption)}</figcaption>" if b.caption else ""
            body.append(f'<figure><img alt="{html.escape(b.caption or b.name)}" '
                        f'src="data:image/png;base64,{data}">{cap}</figure>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(doc.title)}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
