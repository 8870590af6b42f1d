"""``dlnmanifolds compare --config FILE.toml``: a comparison described in a file.

The keys are the command-line flags without the leading dashes (``max-time`` or
``max_time``); lists are TOML arrays or comma strings; a flag given on the command line
overrides the file. A comparison's ``results.json`` stores the resolved configuration
under ``"config"`` (with the package versions under ``"versions"``), and it is itself a
valid ``--config`` file, so a comparison can be rerun from its results. An array of
``[[problems]]`` tables (problem keys only) runs the same grid on each problem, in
``DIR/problem-k/``, and writes a combined report in ``DIR``::

    # compare.toml
    problem = "matrix-completion"
    size = 100
    rank = 5
    observations = 2000
    geometries = ["factors", "euclidean", "dln-fixed-rank"]
    depths = [1, 2, 3]
    solvers = ["gradient-descent", "nuclear-norm", "conjugate-gradient"]
    seeds = 3
    max-time = 10
    test-target = 1e-3

Example
-------
>>> config_to_argv({"size": 40, "depths": [1, 3], "max_time": 5, "resume": True})
['--size', '40', '--depths', '1,3', '--max-time', '5', '--resume']
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Options that a config file cannot set.
NOT_READ = frozenset({"config", "command"})
#: Options about one execution, not the comparison (not stored in results.json).
NOT_STORED = NOT_READ | {"quiet", "resume", "overwrite"}


def load_config(path: str | Path) -> dict[str, Any]:
    """The key -> value table of a TOML file, or the ``"config"`` of a results.json."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--config: no such file {str(path)!r}")
    if path.suffix == ".json":
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"--config: {path} is not valid JSON ({exc})") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
            raise ValueError(f"--config: {path} has no 'config' table (not a results.json)")
        return dict(payload["config"])
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"--config: {path} is not valid TOML ({exc})") from exc


#: The keys a [[problems]] table of a config file may set.
PROBLEM_KEYS = frozenset({"problem", "size", "rows", "rank", "observations", "samples", "noise"})


def problem_tables(value) -> list[dict]:
    """The [[problems]] tables of a config (each a dict of problem keys), or []."""
    if value is None:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(p, dict) for p in value):
        raise ValueError("--config: 'problems' must be a non-empty array of tables [[problems]]")
    for k, table in enumerate(value):
        unknown = sorted(set(key.replace("_", "-") for key in table) - PROBLEM_KEYS)
        if unknown:
            raise ValueError(
                f"--config: problems[{k}] sets {', '.join(unknown)}; a problem table takes "
                f"only {', '.join(sorted(PROBLEM_KEYS))}"
            )
    return [dict(p) for p in value]


def problem_label(table: dict) -> str:
    """'size=8, observations=40': a problem table as a label."""
    return ", ".join(f"{key}={value}" for key, value in table.items())


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def config_to_argv(config: Mapping[str, Any]) -> list[str]:
    """Command-line arguments equivalent to ``config`` (validated by the parser later)."""
    argv: list[str] = []
    for key, value in config.items():
        if not isinstance(key, str):
            raise ValueError(f"--config: keys must be strings, got {key!r}")
        if key.replace("-", "_") in NOT_READ or value is None:
            continue
        if isinstance(value, dict):
            raise ValueError(
                f"--config: {key!r} is a table; give the flags as top-level keys "
                f"(e.g. max-time = 10)"
            )
        if isinstance(value, bool):
            if value:
                argv.append(_flag(key))
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        argv.extend([_flag(key), str(value)])
    return argv


def resolved_config(args: Any, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison's settings from a parsed namespace, keys as in the file.

    Every option is stored (also the defaults), so that the configuration reproduces
    the grid even if a later version changes a default.
    """
    out = {}
    for dest in defaults:
        if dest in NOT_STORED:
            continue
        out[dest.replace("_", "-")] = getattr(args, dest)
    return out


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that change a comparison's numbers."""
    out = {"python": sys.version.split()[0]}
    for name in ("dlnmanifolds", "numpy", "scipy", "pymanopt", "geomstats", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - not installed
            out[name] = "not installed"
    return out
