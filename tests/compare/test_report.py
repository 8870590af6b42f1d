"""The comparison's outputs: figures without ground truth, report.html (in headless
Chromium when installed), and the --config round trip config -> results.json -> grid."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from dlnmanifolds.compare import FixedProblem, ProblemSpec, RunSettings, compare
from dlnmanifolds.compare.cli import _parse, build_parser, main
from dlnmanifolds.compare.figures import FIGURES, performance_profile, times_to_target
from dlnmanifolds.problems import MatrixCompletion

SMALL = ProblemSpec(size=10, rank=2, observations=60)
FAST = RunSettings(rank=2, max_iterations=60, max_time=5.0)
PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_and_report_without_ground_truth(tmp_path):
    full = SMALL.build(0)
    no_truth = MatrixCompletion(full.rows, full.cols, full.values, full.shape)
    result = compare(
        FixedProblem(no_truth, rank=2),
        ["factors", "dln-fixed-rank"],
        [1],
        ["conjugate-gradient"],
        seeds=2,
        settings=FAST,
        output=tmp_path,
        progress=False,
    )
    assert all(r["test_mse"] is None for r in result.records)
    for name in FIGURES:
        assert (tmp_path / name).read_bytes()[:8] == PNG
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img") == len(FIGURES) and "n/a" in html
    assert "n/a" in result.table()


def test_profile_is_dolan_more():
    # Problem 0: A 1 s, B 2 s; problem 1: A fails, B 3 s; problem 2: nobody.
    records = [
        {
            "geometry": "g",
            "depth": 1,
            "solver": s,
            "seed": p,
            "status": st,
            "seconds": t,
            "test_mse": None,
        }
        for p, s, st, t in [
            (0, "A", "converged", 1.0),
            (0, "B", "converged", 2.0),
            (1, "A", "stalled", 9.0),
            (1, "B", "converged", 3.0),
            (2, "A", "max-time", 9.0),
            (2, "B", "diverged", 0.1),
        ]
    ]
    keys, problems, table = times_to_target(records)
    assert [k[2] for k in keys] == ["A", "B"] and len(problems) == 3
    rho = performance_profile(table, np.array([1.0, 1.99, 2.0, 100.0]))
    np.testing.assert_array_equal(rho[0], [1 / 3, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(rho[1], [1 / 3, 1 / 3, 2 / 3, 2 / 3])


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHECK = """<script>
window.addEventListener("load", function () {
  var imgs = Array.from(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var rows = document.querySelectorAll("#summary tbody tr");
  var pre = document.createElement("pre");
  pre.id = "check";
  pre.textContent = JSON.stringify({images: imgs.length, rendered: ok.length,
                                    rows: rows.length,
                                    tableHeight: document.getElementById("summary")
                                                   .getBoundingClientRect().height});
  document.body.appendChild(pre);
});
</script></body>"""


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_report_renders_in_headless_chromium(tmp_path):
    out = tmp_path / "out"
    result = compare(
        SMALL,
        ["factors", "euclidean"],
        [1, 2],
        ["gradient-descent", "nuclear-norm"],
        seeds=2,
        settings=FAST,
        output=out,
        progress=False,
    )
    page = out / "report.html"
    probe = out / "probe.html"  # the same page, plus a script that reports what rendered
    probe.write_text(page.read_text().replace("</body>", CHECK))
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            "--virtual-time-budget=10000",
            f"--user-data-dir={tmp_path / 'profile'}",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="check">(.*?)</pre>', proc.stdout)
    assert found, proc.stderr[-2000:]
    check = json.loads(found.group(1))
    assert check["images"] == len(FIGURES) and check["rendered"] == len(FIGURES)
    assert check["rows"] == len(result.summary()) and check["tableHeight"] > 0


CONFIG = """
problem = "matrix-completion"
size = 10
rank = 2
observations = 60
geometries = ["factors", "euclidean"]
depths = [1, 2]
solvers = ["gradient-descent", "nuclear-norm"]
seeds = 2
max-iterations = 40
max_time = 5
test-target = 0.5
no-plots = true
quiet = true
"""


def test_config_round_trip(tmp_path, capsys):
    config = tmp_path / "compare.toml"
    config.write_text(CONFIG + f'output = "{tmp_path / "a"}"\n')
    assert main(["compare", "--config", str(config)]) == 0
    payload = json.loads((tmp_path / "a" / "results.json").read_text())
    stored = payload["config"]
    assert stored["size"] == 10 and stored["depths"] == [1, 2]
    assert stored["solvers"] == ["gradient-descent", "nuclear-norm"]
    assert stored["max-iterations"] == 40 and stored["test-target"] == 0.5
    assert {"numpy", "pymanopt", "geomstats", "python"} <= set(payload["versions"])
    keys = [r["key"] for r in payload["runs"]]
    # factors: 2 depths x gradient-descent; euclidean: nuclear-norm (its gradient-descent
    # repeats factors N=1); 2 seeds.
    assert len(keys) == (2 + 1) * 2
    assert any("gradient-descent on euclidean" in s for s in payload["skipped"])
    # results.json is itself a config: rerunning it gives the same grid and the same numbers.
    assert (
        main(
            [
                "compare",
                "--config",
                str(tmp_path / "a" / "results.json"),
                "--output",
                str(tmp_path / "b"),
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "b" / "results.json").read_text())
    assert [r["key"] for r in again["runs"]] == keys
    assert [r["final_loss"] for r in again["runs"]] == [r["final_loss"] for r in payload["runs"]]
    assert {k: v for k, v in again["config"].items() if k != "output"} == {
        k: v for k, v in stored.items() if k != "output"
    }
    capsys.readouterr()


def test_command_line_overrides_config_and_bad_config_is_named(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("size = 12\nseeds = 3\n")
    parser = build_parser()
    args = _parse(parser, ["compare", "--config", str(config), "--seeds", "1"])
    assert args.size == 12 and args.seeds == 1
    config.write_text("size = 0\n")
    with pytest.raises(SystemExit):
        _parse(build_parser(), ["compare", "--config", str(config)])
    assert "--size" in capsys.readouterr().err
    config.write_text("size = [\n")
    with pytest.raises(SystemExit):
        _parse(build_parser(), ["compare", "--config", str(config)])
    assert "not valid TOML" in capsys.readouterr().err
    config.write_text("sizes = 3\n")
    with pytest.raises(SystemExit):
        _parse(build_parser(), ["compare", "--config", str(config)])
    assert "sizes" in capsys.readouterr().err


def test_readme_main_job_and_example_config_are_the_same_comparison():
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    line = next(
        s for s in (root / "README.md").read_text().splitlines() if "dlnmanifolds compare" in s
    )
    readme = shlex.split(line.split("dlnmanifolds compare", 1)[1])
    from_readme = _parse(build_parser(), ["compare", *readme])
    from_config = _parse(
        build_parser(), ["compare", "--config", str(root / "examples/compare.toml")]
    )
    assert {k: v for k, v in vars(from_readme).items() if k != "config"} == {
        k: v for k, v in vars(from_config).items() if k != "config"
    }


def test_config_with_several_problems(tmp_path, capsys):
    config = tmp_path / "two.toml"
    config.write_text(
        'geometries = ["dln-fixed-rank"]\ndepths = [2]\nsolvers = ["conjugate-gradient"]\n'
        "seeds = 2\nrank = 1\nmax-time = 5\nquiet = true\n"
        f'output = "{tmp_path / "out"}"\n'
        "[[problems]]\nsize = 8\nobservations = 40\n"
        "[[problems]]\nsize = 10\nobservations = 60\n"
    )
    assert main(["compare", "--config", str(config)]) == 0
    out = tmp_path / "out"
    sizes = [
        json.loads((out / f"problem-{k}" / "results.json").read_text())["config"]["size"]
        for k in (0, 1)
    ]
    assert sizes == [8, 10]
    combined = json.loads((out / "results.json").read_text())
    assert len(combined["runs"]) == 4 and len({r["problem"] for r in combined["runs"]}) == 2
    assert combined["config"]["problems"] == [
        {"size": 8, "observations": 40},
        {"size": 10, "observations": 60},
    ]
    _, problems, _ = times_to_target(combined["runs"])
    assert len(problems) == 4  # Dolan-More problems: (problem, seed) pairs
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == PNG
    assert "<table" in (out / "report.html").read_text()
    config.write_text("[[problems]]\nsize = 8\nseeds = 3\n")
    with pytest.raises(SystemExit):
        _parse(build_parser(), ["compare", "--config", str(config)])
    assert "problems[0] sets seeds" in capsys.readouterr().err
