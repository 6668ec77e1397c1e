"""Autograder throughput against plain `nbgrader autograde`, on the same synthetic class.

    python benchmarks/bench_autograder.py [--n 20] [--assignment ps01] [--jobs 2]

Builds a throwaway nbgrader course (a copy of solutions/<ps>/, exercises/<ps>/ and
nbgrader_config.py) with N synthetic submissions — correct, wrong and hostile, mixed as in
autograder.synthetic — then times, in one run, the two complete commands:

  ours:      python -m autograder grade <ps> <course>/submitted --out ... --jobs J
             (sandboxed, verified outside the learner's process; includes CLI start-up)
  nbgrader:  python -m nbgrader autograde <ps> --force   (sequential, in-kernel tests)

and prints submissions/minute for each and the ratio. It also compares the per-cell scores:
on honest submissions both must agree; on hostile ones nbgrader's extra points are the
attacks it lets through.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import synthetic  # noqa: E402
from autograder.spec import load_spec  # noqa: E402


def make_course(tmp: Path, assignment: str, n: int) -> tuple[Path, dict[str, str]]:
    course = tmp / "course"
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder / assignment, course / folder / assignment)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    students = synthetic.make_class(ROOT, assignment, n, seed=11)
    synthetic.write_class(students, course, assignment, load_spec(assignment).notebook)
    return course, {s: kind for s, (kind, _) in students.items()}


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, done.stdout + done.stderr


def nbgrader_scores(course: Path, assignment: str) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="llm-fundamentals") as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission(assignment, student.id)
            except Exception:
                continue
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.auto_score is not None:
                        scores[(student.id, grade.name)] = grade.auto_score
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--assignment", default="ps01")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory(prefix="bench-autograder-") as tmp:
        course, kinds = make_course(Path(tmp), args.assignment, args.n)
        env["JUPYTER_CONFIG_DIR"] = str(course / ".jupyter")
        py = sys.executable
        _, code, out = timed(
            [py, "-m", "nbgrader", "generate_assignment", args.assignment, "--force"], course, env
        )
        assert code == 0, out[-2000:]
        out_dir = Path(tmp) / "out"
        ours_cmd = [py, "-m", "autograder", "grade", args.assignment, str(course / "submitted")]
        ours_cmd += ["--out", str(out_dir), "--jobs", str(args.jobs), "--no-progress"]
        ours_cmd += ["--course-root", str(course)]
        ours_s, code, out = timed(ours_cmd, ROOT, env)
        assert code == 0, out[-2000:]
        theirs_s, code, _ = timed(
            [py, "-m", "nbgrader", "autograde", args.assignment, "--force"], course, env
        )
        # nbgrader exits 1 when a kernel dies (the exit_kernel attack); its grades still count.

        ours = {}
        with open(out_dir / "grades.csv") as f:
            for row in csv.DictReader(f):
                if row["score"]:
                    ours[(row["student"], row["part"])] = float(row["score"])
        theirs = nbgrader_scores(course, args.assignment)
        agree = {"honest": [0, 0], "hostile": [0, 0]}
        extra = 0.0
        for (student, part), score in ours.items():
            group = "hostile" if kinds[student].startswith("hostile") else "honest"
            agree[group][1] += 1
            agree[group][0] += theirs.get((student, part), 0.0) == score
            if group == "hostile":
                extra += max(0.0, theirs.get((student, part), 0.0) - score)

    mix = {
        k: sum(1 for v in kinds.values() if v.split(":")[0] == k)
        for k in ("correct", "wrong", "hostile")
    }
    rate_ours, rate_theirs = 60 * args.n / ours_s, 60 * args.n / theirs_s
    print(f"{args.n} submissions of {args.assignment} ({mix}), {os.cpu_count()} cores")
    print(
        f"  autograder (sandboxed, verified, --jobs {args.jobs}): {ours_s:6.1f} s  {rate_ours:6.1f} submissions/minute"
    )
    print(
        f"  nbgrader autograde (sequential):           {theirs_s:6.1f} s  {rate_theirs:6.1f} submissions/minute"
    )
    print(f"  ratio: {rate_ours / rate_theirs:.2f}x nbgrader")
    print(f"  same per-cell score as nbgrader: honest {agree['honest'][0]}/{agree['honest'][1]}, "
          f"hostile {agree['hostile'][0]}/{agree['hostile'][1]} "
          f"(nbgrader gave hostile notebooks {extra:g} points they did not earn)")  # fmt: skip
    if code != 0:
        print(f"  (nbgrader autograde exit code {code}: a hostile notebook killed its kernel)")


if __name__ == "__main__":
    main()
