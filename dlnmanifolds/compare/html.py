"""``report.html``: the ranked table, the winner line and the figures as one static page.

The page needs no network and no other file: the figures are embedded as base64 PNG
data URIs and the style is inline, so it can be mailed or opened offline.

Example
-------
>>> import tempfile, pathlib
>>> from dlnmanifolds.compare.aggregate import aggregate
>>> rows = aggregate([{"geometry": "factors", "depth": 1, "solver": "gd", "seed": 0,
...                    "status": "max-time", "final_loss": 0.5, "test_mse": None,
...                    "iterations": 10, "seconds": 1.0}])
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp) / "report.html"
...     write_html(path, rows, [], title="toy")
...     "<table" in path.read_text()
True
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path

from dlnmanifolds.compare.aggregate import table_cells, table_footer, table_headers, winner_line
from dlnmanifolds.compare.figures import FIGURES

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
td { white-space: nowrap; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.winner td { background: #eef8ee; }
p.winner { font-weight: bold; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.8em; }
"""


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def write_html(
    path: Path,
    rows: Sequence[dict],
    figures: Sequence[str],
    *,
    title: str = "",
    target: float | None = None,
    test_target: float | None = None,
    skipped: Sequence[str] = (),
    metadata: dict | None = None,
) -> None:
    """Write the page; ``figures`` are PNG file names in the same directory as ``path``."""
    path = Path(path)
    heading = escape(f"dlnmanifolds compare: {title}" if title else "dlnmanifolds compare")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{heading}</h1>",
        f'<p class="winner">{escape(winner_line(rows, target, test_target))}</p>',
        '<table id="summary"><thead><tr>',
    ]
    headers = table_headers(rows)
    numeric = {h for h, a in headers if a == ">"}
    parts.append("".join(f"<th>{escape(h)}</th>" for h, _ in headers))
    parts.append("</tr></thead><tbody>")
    for k, row in enumerate(rows):
        cls = ' class="winner"' if k == 0 and row["successes"] else ""
        cells = "".join(
            f'<td class="num">{escape(c)}</td>' if h in numeric else f"<td>{escape(c)}</td>"
            for (h, _), c in zip(headers, table_cells(row))
        )
        parts.append(f"<tr{cls}>{cells}</tr>")
    parts.append("</tbody></table>")
    parts.append(
        "<ul>"
        + "".join(
            f"<li>{escape(line.strip())}</li>" for line in table_footer(rows, target, test_target)
        )
        + "</ul>"
    )
    if skipped:
        parts.append("<h2>Skipped combinations</h2><ul>")
        parts.extend(f"<li>{escape(s)}</li>" for s in skipped)
        parts.append("</ul>")
    for name in figures:
        caption = FIGURES.get(name, (None, name))[1]
        parts.append(
            f'<figure><img src="{_image(path.parent / name)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)} ({escape(name)})</figcaption></figure>"
        )
    if metadata:
        parts.append("<h2>Configuration and versions</h2>")
        parts.append(f"<pre>{escape(json.dumps(metadata, indent=1, sort_keys=True))}</pre>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
