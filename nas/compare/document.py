"""A report as a list of blocks, rendered to Markdown and to one self-contained HTML page.

Blocks: `Heading`, `Paragraph`, `Bullets`, `Table`, `Image`, `Figure`, `Code`. Text may use two
inline marks, rendered in both formats: ``code`` in backticks and **bold** in double asterisks.
Images are files inside the report folder: Markdown links them by relative path, the HTML page
embeds them as base64 data URIs, so it can be mailed or opened anywhere on its own. A `Figure` (an
image with a caption) stands on its own line at its full size, scaled down only to the page's
width; clicking it opens it at its natural size in a full-window view.
"""
from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Bullets", "Code", "Figure", "Heading", "Image", "Paragraph", "Table", "to_html", "to_markdown"]


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    right: Sequence[int] = ()  # right-aligned (numeric) columns


@dataclass(frozen=True)
class Image:
    path: str  # relative to the report folder
    alt: str


@dataclass(frozen=True)
class Figure:
    """An image on its own at full width, with a caption below it."""

    path: str  # relative to the report folder
    caption: str


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


Block = Heading | Paragraph | Bullets | Table | Image | Figure | Code


# ----- Markdown -----
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    rule = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text]
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items]
    if isinstance(block, Table):
        return _md_table(block.headers, block.rows, block.right)
    if isinstance(block, Image):
        return [f"![{block.alt}]({block.path})"]
    if isinstance(block, Figure):
        return [f"![{block.caption}]({block.path})", "", f"*{block.caption}*"]
    if isinstance(block, Code):
        return [f"```{block.language}", block.text.rstrip("\n"), "```"]
    raise TypeError(f"not a report block: {block!r}")


def to_markdown(blocks: Sequence[Block]) -> str:
    return "\n\n".join("\n".join(_md_block(b)) for b in blocks) + "\n"


# ----- HTML -----
STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { background: #f4f4f4; padding: 0 0.2em; border-radius: 3px; }
pre { background: #f4f4f4; padding: 0.8em; overflow-x: auto; }
img { max-width: 100%; }
figure.full { margin: 1.2em 0; }
figure.full img { display: block; max-width: 100%; height: auto; cursor: zoom-in; }
figure.full figcaption { font-size: 0.9em; color: #444; margin-top: 0.3em; }
figure.full:target { position: fixed; inset: 0; margin: 0; padding: 1em; background: rgba(255, 255, 255, 0.97);
                     overflow: auto; z-index: 10; }
figure.full:target img { max-width: none; cursor: zoom-out; }
"""
_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")


def inline_html(text: str) -> str:
    """Escape `text` and render its `code` and **bold** marks."""
    parts, last = [], 0
    for match in _INLINE.finditer(text):
        parts.append(html.escape(text[last:match.start()]))
        code, bold = match.groups()
        parts.append(f"<code>{html.escape(code)}</code>" if code is not None else f"<strong>{html.escape(bold)}</strong>")
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def data_uri(path: Path) -> str:
    kinds = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
    kind = kinds.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{inline_html(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            content = inline_html(str(cell))
            cells.append(f'<td class="num">{content}</td>' if i in right else f"<td>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_block(block: Block, folder: Path) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{inline_html(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _html_table(block.headers, block.rows, block.right)
    if isinstance(block, Image):
        return f'<p><img src="{data_uri(folder / block.path)}" alt="{html.escape(block.alt)}"></p>'
    if isinstance(block, Figure):
        anchor = "figure-" + re.sub(r"[^A-Za-z0-9]+", "-", block.path).strip("-")
        # click: the figure fills the window at natural size (CSS :target); click again: back to the page
        return (f'<figure class="full" id="{anchor}"><a href="#{anchor}" class="open">'
                f'<img src="{data_uri(folder / block.path)}" alt="{html.escape(block.caption)}"></a>'
                f'<figcaption>{inline_html(block.caption)} <a href="#" class="close">(back)</a></figcaption></figure>')
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text.rstrip())}</code></pre>"
    raise TypeError(f"not a report block: {block!r}")


def to_html(blocks: Sequence[Block], folder: Path, title: str) -> str:
    """One HTML page with every image embedded; `folder` is where the blocks' image paths start."""
    body = "\n".join(_html_block(b, folder) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")

