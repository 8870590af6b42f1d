"""Command line and figure output shared by the ``plot_*`` examples.

Every example accepts ``--fast`` (a coarse run of a few seconds, used by the test
suite) and ``--output DIR`` (where the PNG files go). Figures are always written to
files with matplotlib's Agg backend, so no display is ever needed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_OUTPUT = Path("results") / "examples"


def example_parser(description: str | None) -> argparse.ArgumentParser:
    """An ``argparse`` parser with the ``--fast`` and ``--output DIR`` options."""
    first_line = (description or "").strip().splitlines()[:1]
    parser = argparse.ArgumentParser(description=first_line[0] if first_line else None)
    parser.add_argument(
        "--fast", action="store_true", help="a coarse run of a few seconds (used by the tests)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"directory for the PNG files, created if missing (default: {DEFAULT_OUTPUT})",
    )
    return parser


def parse_example_args(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """Parse ``argv`` and make sure ``--output`` is a writable directory."""
    args = parser.parse_args(argv)
    out: Path = args.output
    if out.exists() and not out.is_dir():
        parser.error(f"--output {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--output {out}: cannot create the directory ({exc.strerror})")
    if not os.access(out, os.W_OK):
        parser.error(f"--output {out}: the directory is not writable")
    return args


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (never needs a display).

    Exits with a clear message when matplotlib or its Agg backend is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise SystemExit(
            "This example writes PNG files with matplotlib's Agg backend, which could not be "
            f"loaded ({exc}). Install matplotlib (pip install matplotlib); no display is "
            "needed."
        ) from exc
    return plt


def save(fig, output: Path, name: str) -> Path:
    """Write ``fig`` to ``output/name`` (PNG, 110 dpi) and report the path."""
    path = Path(output) / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"wrote {path}")
    return path
