"""The class report, from a graded out dir's grades.csv alone: `<out>/report.html` and a plot.

Per part: how many learners got full marks, some, none, or were not graded (error), which
parts failed most and their most common failure reason. Reasons are grouped after removing
what differs from learner to learner: numbers (case 3 of 8, seeds, limits) and case labels in
parentheses, so "failed on case 3 (random #2, seed 7)" and "failed on case 5 (random #4,
seed 9)" are one failure. Nothing here reads the notebooks or changes a score.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from html import escape
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from autograder.misconception import MARK
from autograder.runner import LATE_PART

GRADES, REPORT_HTML, PLOT_SVG = "grades.csv", "report.html", "scores.svg"

_CASE_LABEL = re.compile(r"(case \d+ of \d+)\s*\([^()]*\)")  # check_function's "(zero vector)"
_SEEDED = re.compile(r"\s*\([^()]*(?:#|seed)[^()]*\)")  # "(random #2, seed 7)"
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass(frozen=True)
class Row:
    """One row of grades.csv."""

    student: str
    part: str
    score: float | None  # None: graded by hand, not yet
    max: float
    status: str
    reason: str

    @property
    def failed(self) -> bool:
        """Autograded and short of full marks (errors included, flagged rows not)."""
        if self.status == "error":
            return True
        return self.status == "ok" and self.score is not None and self.score < self.max


@dataclass(frozen=True)
class PartSummary:
    part: str
    learners: int
    full: int  # full marks
    some: int  # more than 0, less than max
    none: int  # 0 points, graded
    errors: int  # not graded (limits, unreadable notebook)
    flagged: int
    manual: int  # written answers waiting for a grader
    mean: float  # mean score over autograded rows
    max: float
    failures: Counter  # normalised reason -> learners
    misconceptions: Counter  # known mistake (autograder.misconception) -> learners

    @property
    def failed(self) -> int:
        return self.some + self.none + self.errors


def normalise(reason: str) -> str:
    """The failure with what differs per learner removed: numbers -> N, case labels dropped."""
    text = _SEEDED.sub("", _CASE_LABEL.sub(r"\1", reason.strip().lower()))
    text = _NUMBER.sub("N", text)
    return re.sub(r"\s+", " ", text).strip(" .:;") or "(no reason given)"


def read_grades(path: Path) -> list[Row]:
    with open(path, newline="") as f:
        return [
            Row(
                r["student"],
                r["part"],
                float(r["score"]) if r["score"] not in ("", None) else None,
                float(r["max"] or 0),
                r["status"],
                r["reason"] or "",
            )
            for r in csv.DictReader(f)
        ]


def summarise(rows: list[Row]) -> list[PartSummary]:
    """One summary per part, in the order parts first appear in grades.csv."""
    by_part: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if row.part != LATE_PART:
            by_part[row.part].append(row)
    summaries = []
    for part, part_rows in by_part.items():
        graded = [r for r in part_rows if r.score is not None and r.status != "flagged"]
        summaries.append(
            PartSummary(
                part=part,
                learners=len({r.student for r in part_rows}),
                full=sum(r.status == "ok" and r.score == r.max for r in graded),
                some=sum(r.status == "ok" and 0 < r.score < r.max for r in graded),
                none=sum(r.status == "ok" and r.score == 0 < r.max for r in graded),
                errors=sum(r.status == "error" for r in part_rows),
                flagged=sum(r.status == "flagged" for r in part_rows),
                manual=sum(r.score is None and r.status == "ok" for r in part_rows),
                mean=sum(r.score for r in graded) / len(graded) if graded else 0.0,
                max=max(r.max for r in part_rows),
                failures=Counter(normalise(r.reason) for r in part_rows if r.failed),
                misconceptions=Counter(
                    r.reason.rsplit(MARK, 1)[1].rstrip("]") for r in part_rows if MARK in r.reason
                ),
            )
        )
    return summaries


def plot(rows: list[Row], summaries: list[PartSummary], path: Path) -> None:
    """Per part, learners with full / some / no points / not graded; and the totals' histogram."""
    fig = Figure(figsize=(11, 0.45 * len(summaries) + 3), layout="constrained")
    bars, hist = fig.subplots(1, 2, width_ratios=(3, 2))
    names = [s.part for s in summaries][::-1]
    left = [0] * len(names)
    for label, key, color in (
        ("full marks", "full", "#2a9d48"),
        ("some points", "some", "#e9b949"),
        ("no points", "none", "#d1495b"),
        ("not graded (error)", "errors", "#6c6c6c"),
        ("flagged", "flagged", "#8a5cc2"),
        ("graded by hand", "manual", "#9ecae1"),
    ):
        counts = [getattr(s, key) for s in summaries][::-1]
        bars.barh(names, counts, left=left, label=label, color=color)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    bars.set_xlabel("learners")
    bars.set_title("score distribution per part")
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize="small")
    bars.xaxis.set_major_locator(MaxNLocator(integer=True))
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[row.student] += row.score or 0.0
    hist.hist(list(totals.values()), bins=min(20, max(1, len(totals))), color="#4878a8")
    possible = sum(s.max for s in summaries if not s.manual)
    hist.set_xlabel(f"autograded total (of {possible:g}; late penalties included)")
    hist.set_ylabel("learners")
    hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    hist.set_title("totals")
    fig.savefig(path, format="svg", metadata={"Date": None})


def write_report(out: Path, top: int = 10) -> Path:
    """`<out>/report.html` and `<out>/scores.svg` from `<out>/grades.csv`."""
    rows = read_grades(out / GRADES)
    if not rows:
        raise ValueError(f"{out / GRADES} has no rows")
    summaries = summarise(rows)
    style = {"svg.hashsalt": "autograder-report", "svg.fonttype": "none"}  # stable ids, text
    with matplotlib.rc_context(style):
        plot(rows, summaries, out / PLOT_SVG)
    path = out / REPORT_HTML
    path.write_text(_html(rows, summaries, top))
    return path


def _html(rows: list[Row], summaries: list[PartSummary], top: int) -> str:
    learners = len({r.student for r in rows})
    table = "\n".join(
        f"<tr><td>{escape(s.part)}</td><td>{s.mean:.2f} / {s.max:g}</td><td>{s.full}</td>"
        f"<td>{s.some}</td><td>{s.none}</td><td>{s.errors}</td><td>{s.flagged}</td>"
        f"<td>{s.manual}</td></tr>"
        for s in summaries
    )
    worst = sorted((s for s in summaries if s.failed), key=lambda s: (-s.failed, s.part))[:top]
    failed = "\n".join(
        f"<tr><td>{escape(s.part)}</td><td>{s.failed} of {s.learners}</td>"
        f"<td>{escape(reason)}</td><td>{count}</td></tr>"
        for s in worst
        for reason, count in [min(s.failures.items(), key=lambda rc: (-rc[1], rc[0]))]
    )
    mistakes = "\n".join(
        f"<tr><td>{escape(s.part)}</td><td>{escape(label)}</td><td>{count}</td></tr>"
        for s in summaries
        for label, count in sorted(s.misconceptions.items(), key=lambda lc: (-lc[1], lc[0]))
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self'; style-src 'unsafe-inline'">
<title>Class report</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>Class report</h1>
<p>{learners} learners, from {GRADES}. Failure reasons are grouped with numbers and case
labels removed (N stands for a number).</p>
<img src="{PLOT_SVG}" alt="score distribution per part">
<h2>Parts</h2>
<table><tr><th>part</th><th>mean</th><th>full marks</th><th>some points</th>
<th>no points</th><th>not graded</th><th>flagged</th><th>graded by hand</th></tr>
{table}
</table>
<h2>Most failed parts</h2>
<table><tr><th>part</th><th>failed</th><th>most common failure</th><th>learners</th></tr>
{failed}
</table>
<h2>Known mistakes</h2>
<p>Failed cases whose output equals a known-wrong variant named in the assignment's spec.</p>
<table><tr><th>part</th><th>mistake</th><th>learners</th></tr>
{mistakes}
</table>
</body></html>
"""
