"""The one document writer: blocks rendered to Markdown and self-contained HTML, tables, numbers.

A report is built once as a ``Doc`` (a list of blocks: heading, paragraph, table, image, ...)
and rendered twice: to Markdown (images as relative links) and to HTML (images as base64
``data:`` URIs, inline CSS, nothing fetched). Every string that came from a study file or a
result table is escaped in both renderings. ``write_doc`` writes report.md then report.html,
each atomically, so an interrupted render never leaves a half-written file. A table added with
a label folds into ``<details>`` when longer than ``FOLD_ROWS`` rows, its summary naming what
it holds and how many rows (GitHub renders the same element in Markdown). Numbers shown to
people go through ``fmt(quantity, value)`` / ``fmt_interval`` (``archlab.numbers``: one format
per quantity, re-exported here); ``fmt_num`` / ``fmt_mean_ci`` / ``fmt_millions`` are the older
digit-based forms, kept for callers outside the report layer.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from archlab.faults import pause_for_tests
from archlab.io import write_atomic
from archlab.numbers import fmt, fmt_end, fmt_interval, macs_unit, quantity_of

__all__ = [
    "FOLD_ROWS",
    "Doc",
    "fmt",
    "fmt_date",
    "fmt_end",
    "fmt_interval",
    "fmt_mean_ci",
    "fmt_millions",
    "fmt_num",
    "folded_summary",
    "macs_unit",
    "quantity_of",
    "html_table",
    "md_table",
    "md_text",
    "to_html",
    "to_markdown",
    "write_doc",
]

_CSS = """
body{font-family:system-ui,sans-serif;max-width:80em;margin:1em auto;padding:0 1em;color:#222}
h1{font-size:1.6em;margin:.3em 0} h2{margin:.8em 0 .4em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em;display:block;overflow-x:auto;
max-width:100%}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2} img{max-width:100%;border:1px solid #eee}
figure{margin:1em 0} figcaption{font-size:.85em;color:#555}
blockquote{border-left:4px solid #ccc;margin:1em 0;padding:.2em 1em;color:#444}
.agrees,.better{color:#0a0} .disagrees,.worse{color:#b00} .inconclusive{color:#a60}
.equivalent{color:#06c} .smaller{color:#c60} .confounded{color:#777;font-style:italic}
pre{background:#f7f7f7;padding:.5em;overflow-x:auto}
details{margin:1em 0} summary{cursor:pointer;color:#06c}
"""

#: A labelled table longer than this folds into <details> (a screen holds about this many rows).
FOLD_ROWS = 12

BLOCK_KINDS = ("h1", "h2", "h3", "p", "quote", "pre", "table", "kv", "img", "links")

#: Leading words of a table cell that colour it in HTML (the cell's CSS class).
VERDICT_WORDS = (
    "agrees",
    "disagrees",
    "inconclusive",
    "equivalent",
    "smaller",
    "better",
    "worse",
    "confounded",
)


# --- the document model --------------------------------------------------------------------------


@dataclass
class Doc:
    """The blocks of a report, rendered alike to Markdown and HTML.

    Blocks are ``(kind, *payload)``: ``("h1"|"h2"|"h3"|"p"|"quote"|"pre", text)``,
    ``("table", DataFrame)`` or ``("table", DataFrame, label)`` (folded when longer than
    ``FOLD_ROWS``: the label says what it holds), ``("img", png path, alt text)``,
    ``("kv", [(key, value), ...])``, ``("links", [(text, markdown href, html href), ...])``.
    """

    blocks: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, kind: str, *payload: Any) -> None:
        """Append one block; ValueError names the valid kinds."""
        if kind not in BLOCK_KINDS:
            raise ValueError(f"unknown block kind {kind!r}; valid: {', '.join(BLOCK_KINDS)}")
        self.blocks.append((kind, *payload))


# --- number formats ------------------------------------------------------------------------------


def fmt_num(x: object, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals; "n/a" when not finite; non-numbers as they are."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(x)
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


def fmt_mean_ci(mean: float, lo: float, hi: float, digits: int = 2) -> str:
    """``mean [lo, hi]``; "(1 run, no CI)" without an interval; "n/a" without a mean."""
    if not math.isfinite(mean):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{mean:.{digits}f} (1 run, no CI)"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def fmt_millions(x: object) -> str:
    """A count in millions with two decimals and thousands separators, or "n/a"."""
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "n/a"
    return f"{v / 1e6:,.2f}" if math.isfinite(v) else "n/a"


def fmt_date() -> str:
    """The report date line: now, in UTC, to the minute."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- Markdown ------------------------------------------------------------------------------------


def md_text(value: object) -> str:
    """``value`` as one line of Markdown text that cannot open an HTML tag or split a cell."""
    # Markdown passes raw HTML through: "<" is escaped so data cannot open a tag; "|" splits cells.
    text = str(value).replace("<", "&lt;").replace("|", "\\|")
    return " ".join(text.splitlines())


def md_table(
    header: Sequence[object],
    rows: Iterable[Sequence[object]],
    *,
    align: Sequence[str] | None = None,
) -> str:
    """A Markdown table, every cell escaped by ``md_text``.

    ``align`` gives each column "left" (the default) or "right".
    """
    rules = ["---:" if a == "right" else "---" for a in (align or ["left"] * len(header))]
    head = "| " + " | ".join(md_text(c) for c in header) + " |"
    body = ["| " + " | ".join(md_text(v) for v in row) + " |" for row in rows]
    return "\n".join([head, "|" + "|".join(rules) + "|", *body])


def _md_frame(df: pd.DataFrame) -> str:
    return md_table(list(df.columns), df.itertuples(index=False))


def folded_summary(df: pd.DataFrame, label: str | None) -> str | None:
    """The <details> summary of a labelled table too long to show open; None to keep it open."""
    if not label or len(df) <= FOLD_ROWS:
        return None
    return f"{label} ({len(df):,} rows)"


def _fold(table: str, summary: str | None, gap: str = "") -> str:
    if summary is None:
        return table
    # Markdown needs blank lines around a table inside HTML for GitHub to render it
    return f"<details><summary>{html.escape(summary)}</summary>{gap}{table}{gap}</details>"


def to_markdown(doc: Doc, out_dir: Path) -> str:
    """The Markdown of ``doc``; image links are relative to ``out_dir``."""
    parts = []
    for kind, *p in doc.blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + md_text(p[0]))
        elif kind == "p":
            parts.append(md_text(p[0]))
        elif kind == "quote":
            parts.append("> " + md_text(p[0]))
        elif kind == "pre":
            parts.append("```\n" + str(p[0]).replace("```", "'''") + "\n```")
        elif kind == "table":
            summary = folded_summary(p[0], p[1] if len(p) > 1 else None)
            parts.append(_fold(_md_frame(p[0]), summary, "\n\n"))
        elif kind == "kv":
            parts.append("\n".join(f"- **{md_text(k)}**: {md_text(v)}" for k, v in p[0]))
        elif kind == "img":
            rel = os.path.relpath(p[0], out_dir).replace(os.sep, "/")
            parts.append(f"![{md_text(p[1])}]({rel})")
        elif kind == "links":
            parts.append("\n".join(f"- [{md_text(text)}]({md})" for text, md, _ in p[0]))
    return "\n\n".join(parts) + "\n"


# --- HTML ----------------------------------------------------------------------------------------


def _html_cell(value: object) -> str:
    text = html.escape(str(value))
    word = str(value).split(" ")[0]
    if word in VERDICT_WORDS:
        return f'<td class="{word}">{text}</td>'
    return f"<td>{text}</td>"


def html_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table, every cell escaped; a cell starting with a verdict word is coloured."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = ["<tr>" + "".join(_html_cell(v) for v in row) + "</tr>" for row in rows]
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html_block(kind: str, p: Sequence[Any]) -> str:
    if kind in ("h1", "h2", "h3"):
        return f"<{kind}>{html.escape(str(p[0]))}</{kind}>"
    if kind in ("p", "quote", "pre"):
        tag = {"p": "p", "quote": "blockquote", "pre": "pre"}[kind]
        return f"<{tag}>{html.escape(str(p[0]))}</{tag}>"
    if kind == "table":
        table = html_table(list(p[0].columns), p[0].itertuples(index=False))
        return _fold(table, folded_summary(p[0], p[1] if len(p) > 1 else None))
    if kind == "kv":
        items = "".join(
            f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in p[0]
        )
        return f"<ul>{items}</ul>"
    if kind == "links":
        items = "".join(
            f'<li><a href="{html.escape(href)}">{html.escape(str(text))}</a></li>'
            for text, _, href in p[0]
        )
        return f"<ul>{items}</ul>"
    alt = html.escape(str(p[1]))  # "img", the last kind
    img = f'<img src="{_data_uri(p[0])}" alt="{alt}">'
    return f"<figure>{img}<figcaption>{alt}</figcaption></figure>"


def to_html(doc: Doc, title: str) -> str:
    """A self-contained HTML page of ``doc``: inline CSS, images as data: URIs."""
    body = "\n".join(_html_block(kind, p) for kind, *p in doc.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_doc(
    doc: Doc,
    title: str,
    out_dir: Path,
    *,
    md_name: str = "report.md",
    html_name: str = "report.html",
) -> dict[str, Path]:
    """Write ``out_dir``/report.md then report.html, each atomically; returns both paths."""
    out_dir = Path(out_dir)
    md = write_atomic(out_dir / md_name, to_markdown(doc, out_dir))
    pause_for_tests("render")  # tests kill a study here: report.md new, report.html old
    page = write_atomic(out_dir / html_name, to_html(doc, title))
    return {md_name: md, html_name: page}
