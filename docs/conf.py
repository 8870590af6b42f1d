"""Sphinx configuration for the dlnmanifolds documentation.

Build (warnings are errors):  sphinx-build -W -b html docs docs/_build/html
The example gallery runs every script of ``examples/`` with ``--fast`` and embeds its
figures (thumbnails included); set DLNMANIFOLDS_DOCS_RUN_EXAMPLES=0 to render the pages
without running them. Math is rendered by a MathJax bundled with the
``sphinx-mathjax-offline`` package (copied into ``_static/mathjax``), so the pages show
formulas offline.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))  # gallery_args (the --fast arguments of the gallery)
os.environ.setdefault("MPLBACKEND", "Agg")  # examples never need a display

import dlnmanifolds  # noqa: E402

project = "dlnmanifolds"
author = "dlnmanifolds developers"
copyright = "dlnmanifolds developers"  # noqa: A001
release = dlnmanifolds.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # serves MathJax from _static/, no CDN
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py", "**/*.md5"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_theme = "furo"
html_title = f"dlnmanifolds {release}"
pygments_style = "sphinx"

# -- MyST (Markdown pages: the mathematical reference, the custom-geometry how-to)
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- autodoc / napoleon: numpy-style docstrings, members in source order -----
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "description"
# The torch extra is optional: without it, dlnmanifolds.geoopt is documented against
# mocked torch/geoopt modules, so that a build without the extra still passes -W.
autodoc_mock_imports: list[str] = [
    name for name in ("torch", "geoopt") if importlib.util.find_spec(name) is None
]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
# Document our own docstrings only: Pymanopt's (Google-style, with citations) are not
# repeated on the methods we override.
autodoc_inherit_docstrings = False


# -- sphinx-gallery ----------------------------------------------------------
def _has_rst_title(script: Path) -> bool:
    """True when the module docstring opens with an underlined RST title (gallery convention)."""
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    lines = [line.rstrip() for line in doc.strip().splitlines()]
    return (
        len(lines) >= 2
        and bool(lines[0])
        and re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", lines[1]) is not None
        and len(lines[1]) >= len(lines[0])
    )


def _gallery_ignore_pattern(examples: Path) -> str:
    """Skip helper modules and scripts whose docstring has no RST title.

    sphinx-gallery makes the first docstring paragraph the page title; without an
    underlined title the page has none and ``-W`` fails. Such scripts are still run by
    the test suite, they are just not rendered here.
    """
    skipped = [r"__init__\.py", r"_[^/\\]*\.py"]
    skipped += [re.escape(p.name) for p in sorted(examples.glob("*.py")) if not _has_rst_title(p)]
    return r"(^|[/\\])(" + "|".join(skipped) + r")$"


_run_examples = os.environ.get("DLNMANIFOLDS_DOCS_RUN_EXAMPLES", "1") not in ("", "0", "false")
plot_gallery = "True" if _run_examples else "False"
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"\.py$",  # run every example (all take --fast)
    "reset_argv": "gallery_args.reset_argv",
    "ignore_pattern": _gallery_ignore_pattern(ROOT / "examples"),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "write_computation_times": False,
}


# -- plain-text formulas in docstrings ---------------------------------------
# The docstrings write formulas in plain text (|G_p|, Dphi^*, C_W^*(S)) and continue a
# long formula on an indented line. Before napoleon parses a docstring, this hook
# (1) escapes the characters RST reads as markup, '|' (substitution) and a '*' that
# could open emphasis, except inside ``literals`` and literal (::) blocks, and
# (2) in the free text before the first numpy section, sets an unexpectedly indented
# continuation apart with blank lines (RST would otherwise error on it).
_MARKUP = re.compile(r"(?<!\\)\||(?<![*\\])\*(?![*\s]|$)")
_SECTIONS = {
    "Parameters", "Returns", "Yields", "Receives", "Raises", "Warns", "Other Parameters",
    "Attributes", "Methods", "Examples", "Notes", "References", "See Also", "Warnings",
}
_BULLET = re.compile(r"^(\s*)([*+-]|\d+[.)])\s+")


def _escape_line(line: str) -> str:
    parts = line.split("``")
    if len(parts) % 2 == 0:  # an unpaired `` (literal continues on the next line)
        return line
    return "``".join(
        _MARKUP.sub(lambda m: "\\" + m.group(0), p) if k % 2 == 0 else p
        for k, p in enumerate(parts)
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _content_indent(line: str) -> int:
    match = _BULLET.match(line)
    return match.end() if match else _indent(line)


def escape_plain_math(app, what, name, obj, options, lines: list[str]) -> None:
    out: list[str] = []
    literal_indent = None
    free_text = True
    for k, line in enumerate(lines):
        stripped = line.strip()
        if (stripped in _SECTIONS and k + 1 < len(lines)
                and re.fullmatch(r"-{3,}", lines[k + 1].strip())):
            free_text = False
        if literal_indent is not None and stripped and _indent(line) <= literal_indent:
            literal_indent = None
        if literal_indent is None:
            prev = out[-1] if out else ""
            if free_text and stripped and prev.strip():
                deeper = _indent(line) > _content_indent(prev) and not prev.rstrip().endswith(":")
                shallower = _indent(line) < _indent(prev)
                if deeper or shallower:
                    out.append("")
            if not stripped.startswith(">>>"):
                line = _escape_line(line)
        out.append(line)
        if line.rstrip().endswith("::"):
            literal_indent = _indent(line)
    lines[:] = out


def setup(app) -> None:
    app.connect("autodoc-process-docstring", escape_plain_math, priority=400)
