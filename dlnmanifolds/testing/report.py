"""The conformance report: one row per check, with the number measured and its tolerance.

Diagnostics return numbers; printing is the caller's choice (``print(report)``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Statuses a check can end in. ``info`` measures something the manifold does not
#: claim (e.g. the order of a retraction declared first order); ``skip`` means
#: the check could not run (a method is not implemented, no membership test, ...).
STATUSES = ("pass", "fail", "skip", "info")


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check.

    ``value`` is the worst number measured over all points tried, compared to
    ``tolerance`` with ``comparison`` (``"<="`` for errors, ``">="`` for slopes
    and eigenvalues, ``"=="`` for dimensions).

    Example
    -------
    >>> from dlnmanifolds.testing import CheckResult
    >>> result = CheckResult("metric.symmetric", "pass", value=2e-16, tolerance=1e-8)
    >>> result.failed, result.line()
    (False, 'metric.symmetric = 2e-16 (need <= 1e-08)')
    """

    name: str
    status: str
    value: float | None = None
    tolerance: float | None = None
    comparison: str = "<="
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    def line(self) -> str:
        """A one-line description, as used in assertion messages."""
        value = "-" if self.value is None else _fmt(self.value)
        tol = "" if self.tolerance is None else f" (need {self.comparison} {_fmt(self.tolerance)})"
        note = f": {self.note}" if self.note else ""
        return f"{self.name} = {value}{tol}{note}"


def judge(
    name: str, value: float, tolerance: float, comparison: str = "<=", note: str = ""
) -> CheckResult:
    """A pass/fail result; NaN always fails."""
    if comparison == "<=":
        ok = value <= tolerance
    elif comparison == ">=":
        ok = value >= tolerance
    elif comparison == "==":
        ok = value == tolerance
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"comparison must be '<=', '>=' or '==', got {comparison!r}")
    ok = ok and not (isinstance(value, float) and math.isnan(value))
    return CheckResult(name, "pass" if ok else "fail", float(value), tolerance, comparison, note)


def _fmt(x: float) -> str:
    if isinstance(x, float) and (x != x or abs(x) == math.inf):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


@dataclass
class ConformanceReport:
    """Every check run on one manifold (or space, or bundle).

    Example
    -------
    >>> from dlnmanifolds.testing import CheckResult, ConformanceReport
    >>> report = ConformanceReport("my manifold")
    >>> report.add(CheckResult("a", "pass", 1e-15, 1e-8))
    >>> report.add(CheckResult("b", "fail", 0.3, 1e-8))
    >>> report.passed, [r.name for r in report.failures], "b" in report
    (False, ['b'], True)
    """

    subject: str
    results: list[CheckResult] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def add(self, result: CheckResult) -> None:
        self.results.append(result)

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; checks: {self.names}")

    def __contains__(self, name: object) -> bool:
        return any(r.name == name for r in self.results)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.results]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def passed(self) -> bool:
        """True when no check failed (skipped and info checks do not count)."""
        return not self.failures

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def table(self) -> str:
        """A fixed-width table of every check."""
        rows = [("check", "status", "value", "tolerance", "note")]
        for r in self.results:
            rows.append(
                (
                    r.name,
                    r.status.upper(),
                    "-" if r.value is None else _fmt(r.value),
                    "-" if r.tolerance is None else f"{r.comparison} {_fmt(r.tolerance)}",
                    r.note,
                )
            )
        widths = [max(len(row[k]) for row in rows) for k in range(4)]
        lines = [f"Conformance of {self.subject}"]
        for k, row in enumerate(rows):
            lines.append(
                "  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]
            )
            if k == 0:
                lines.append("-" * (sum(widths) + 8 + max(len("note"), 20)))
        lines.append(
            f"{self.count('pass')} passed, {self.count('fail')} failed, "
            f"{self.count('skip')} skipped, {self.count('info')} info"
        )
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON)."""
        return {
            "subject": self.subject,
            "settings": dict(self.settings),
            "results": [asdict(r) for r in self.results],
        }

    def raise_for_failures(self) -> None:
        """Raise one AssertionError listing every failed check (and the full table)."""
        if self.passed:
            return
        listing = "\n".join(f"  - {r.line()}" for r in self.failures)
        raise AssertionError(
            f"{self.subject} fails {len(self.failures)} conformance check(s):\n{listing}\n\n"
            f"{self.table()}"
        )


class SkipCheck(Exception):
    """Raised inside a check group when its precondition does not hold."""


def run_check_group(
    report: ConformanceReport, names: Sequence[str], check: Callable[[], list[CheckResult]]
) -> None:
    """Run a group of checks into ``report``: NotImplementedError or SkipCheck mark all
    of ``names`` skipped, any other exception fails them with its message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = check()
    except NotImplementedError as exc:
        note = f"not implemented: {exc}"[:120]
        results = [CheckResult(n, "skip", note=note) for n in names]
    except SkipCheck as exc:
        results = [CheckResult(n, "skip", note=str(exc)) for n in names]
    except Exception as exc:  # a crash is a failure, reported with its message
        message = f"raised {type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        results = [CheckResult(n, "fail", float("nan"), note=message) for n in names]
    for r in results:
        report.add(r)
