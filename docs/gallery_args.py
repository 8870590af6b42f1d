"""The command line sphinx-gallery gives every example: a fast run, figures in _build."""

from __future__ import annotations

from pathlib import Path

OUTPUT = Path(__file__).resolve().parent / "_build" / "gallery_output"


def reset_argv(gallery_conf, script_vars) -> list[str]:
    """``--fast --output docs/_build/gallery_output/<script>`` for every example."""
    name = Path(script_vars["src_file"]).stem
    return ["--fast", "--output", str(OUTPUT / name)]
