"""Second-round red team: nothing of one student's run reaches another's.

Student "a_lingerer" leaves a process behind whose main thread has exited while another
thread keeps running (the old clean-up skipped it as a zombie); that thread writes forged
"called the reference" events and replies to every file descriptor it has, and files to
every writable place. It also fills /tmp, hides a file in a read-only folder there, and
tries to create a user namespace. Honest "z_victim" students graded after it, by the same
workers, must keep full marks, see none of those files or processes, and be able to write.
Run with --jobs 1, --jobs 2 and the Dask executor.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from autograder import synthetic
from autograder.context import Options
from autograder.runner import Batch, run_batch
from autograder.sandbox import Limits, probe

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(wall_seconds=60, cpu_seconds=20, memory_mb=1024, part_seconds=10)
TOKEN = "lingerer-token-7"

_LINGER = f"""
import ctypes, json, os, threading, time


def _frame(m):
    d = json.dumps(m).encode()
    return len(d).to_bytes(4, "big") + d


_forged = b"".join(
    _frame({{"k": "event", "kind": "reference", "part": p, "writes": False,
             "detail": "course_lib.embeddings.similarity.dot"}})
    for p in PARTS_HERE
) + b"".join(_frame({{"k": "reply", "n": n, "ok": {{"t": "none"}}}}) for n in range(1, 400))


def _haunt():
    for _ in range(3000):
        for fd in range(3, 64):
            try:
                os.write(fd, _forged)
            except OSError:
                pass
        for folder in ("/tmp", "/tmp/work", "/dev/shm", "."):
            try:
                open(os.path.join(folder, "{TOKEN}"), "w").write("left behind")
            except OSError:
                pass
        time.sleep(0.02)


if os.fork() == 0:
    threading.Thread(target=_haunt).start()
    ctypes.CDLL(None).syscall(60 if os.uname().machine == "x86_64" else 93, 0)  # main thread exits
os.makedirs("/tmp/ro/{TOKEN}", exist_ok=True)
try:
    with open("/tmp/ro/{TOKEN}/fill", "wb") as f:
        while True:
            f.write(b"x" * 2**20)
except OSError:
    pass
os.chmod("/tmp/ro/{TOKEN}", 0o555)
os.chmod("/tmp/ro", 0o555)
print("USERNS", ctypes.CDLL(None, use_errno=True).unshare(0x10000000))
"""

_LOOK = f"""
import os

_mine = open("/tmp/victim-scratch", "wb")
_mine.write(b"y" * 2**20)  # the disk is not full
_mine.close()
_seen = [p for p in ("/tmp", "/tmp/work", "/dev/shm", ".") for n in os.listdir(p) if "{TOKEN}" in n]
_seen += [n for n in os.listdir("/tmp") if n == "ro"]
_others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()
           and os.stat(f"/proc/{{p}}").st_uid == os.getuid()]
print("VICTIM SAW", _seen, "PROCESSES", _others)
"""


def _write(folder: Path, parts: list[str]) -> list[str]:
    students = {}
    lingerer = synthetic.correct(ROOT, "ps01")
    synthetic.set_cell(
        lingerer,
        "ex1_dot",
        _LINGER.replace("PARTS_HERE", repr(parts))
        + "\n\n"
        + synthetic.cell_source(lingerer, "ex1_dot"),
    )
    for i in range(2):
        students[f"a{i}_lingerer"] = lingerer
        victim = synthetic.correct(ROOT, "ps01")
        synthetic.set_cell(
            victim, "ex1_dot", _LOOK + "\n\n" + synthetic.cell_source(victim, "ex1_dot")
        )
        students[f"z{i}_victim"] = victim
    for name, nb in students.items():
        (folder / name / "ps01").mkdir(parents=True)
        (folder / name / "ps01" / "ps01.ipynb").write_text(json.dumps(nb))
    return sorted(students)


@pytest.mark.skipif(probe("auto").mode != "bwrap", reason="bubblewrap is not usable here")
@pytest.mark.parametrize("jobs, executor", [(1, "local"), (2, "local"), (2, "dask")])
def test_students_do_not_reach_each_other(tmp_path, jobs, executor):
    from redteam.base import PARTS

    submitted = tmp_path / "submitted"
    names = _write(submitted, PARTS)
    out = tmp_path / "out"
    batch = Batch(
        "ps01", submitted, out, ROOT, Options(LIMITS, "bwrap"), jobs=jobs, executor=executor,
        progress=False,
    )  # fmt: skip
    assert run_batch(batch) == 0
    rows: dict = {}
    with open(out / "grades.csv") as f:
        for row in csv.DictReader(f):
            rows.setdefault(row["student"], []).append(row)
    assert sorted(rows) == names
    log = (out / "grading.log").read_text()
    for student in (n for n in names if "victim" in n):  # full marks, no forged flags
        graded = [r for r in rows[student] if r["score"]]
        assert all(r["score"] == r["max"] and r["status"] == "ok" for r in graded), rows[student]
    seen = re.findall(r"VICTIM SAW (\[.*?\]) PROCESSES (\[.*?\])", log)
    assert len(seen) == 2 and all(s == ("[]", "[]") for s in seen), seen
    assert log.count("USERNS -1") == 2, log
