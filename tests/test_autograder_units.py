"""Unit tests of the autograder's trusted pieces (no sandbox needed, except one CLI call).

Independent references: nbgrader's own `compute_checksum`, Python's exact float hex, NumPy
equality, zipfile; learner-facing texts are checked for what they must and must not say.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import traceback
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import spec as spec_module
from autograder import synthetic, wire
from autograder.collect import collect, student_id
from autograder.evaluate import outcome
from autograder.notebook import (
    NotebookError,
    assignment_cells,
    checksum,
    learner_script,
    parse_notebook,
)
from autograder.remote import learner_exception
from autograder.sandbox import Limits
from autograder.scan import scan
from autograder.spec import TestCell, load_spec
from autograder.verify import TestRun
from autograder.view import build_view, hidden_objects
from course_lib.grading import check_value
from course_lib.grading.benchmark_cases import TinyCausalLM
from course_lib.models import ModelConfig

ROOT = Path(__file__).resolve().parents[1]
PS01 = ROOT / "solutions" / "ps01" / "ps01.ipynb"


def _roundtrip(x):
    return wire.decode(
        json.loads(json.dumps(wire.encode(x, wire.Budget(2**20)))), wire.Budget(2**20)
    )


def test_wire_round_trip_keeps_types_and_exact_values():
    values = [
        None, True, 3, -(2**70), 0.1, -0.0, math.inf, "queen", b"\x00\xff", 1 + 2j,
        np.float64(0.1), np.int64(7), np.bool_(True), np.array(2.5), np.arange(6.0).reshape(2, 3),
        np.array([1, 2], dtype=np.int32), [1.5, (2, "a")], {"w01": np.ones(3), 2: None},
        {0, 3, "a", (1, 2)}, frozenset({np.int64(4), 5.5}),
    ]  # fmt: skip
    for x in values:
        y = _roundtrip(x)
        assert type(y) is type(x), (x, y)
        if isinstance(x, np.ndarray):
            assert y.dtype == x.dtype and y.shape == x.shape and np.array_equal(x, y)
        elif isinstance(x, dict):
            assert list(y) == list(x)
        elif isinstance(x, float):
            assert x.hex() == y.hex()
        else:
            assert x == y
    assert math.isnan(_roundtrip(math.nan))
    t = torch.arange(4, dtype=torch.bfloat16)
    assert torch.equal(_roundtrip(t), t) and _roundtrip(t).dtype == torch.bfloat16
    assert _roundtrip(torch.float16) is torch.float16 and _roundtrip(slice(1, None, 2)) == slice(
        1, None, 2
    )
    g = torch.Generator().manual_seed(3)
    assert torch.equal(torch.rand(5, generator=_roundtrip(g)), torch.rand(5, generator=g))
    rng = np.random.default_rng(5)
    assert _roundtrip(rng).random() == rng.random()
    cfg = ModelConfig(vocab_size=100, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=128)
    assert _roundtrip(cfg) == cfg
    model = TinyCausalLM(vocab_size=7, seed=1)
    ids = torch.tensor([[1, 2, 3]])
    assert torch.equal(_roundtrip(model)(ids), model(ids))
    from course_lib.grading.training_cases import TINY
    from course_lib.models.gpt import GPT

    gpt = GPT(TINY)  # keeps its config (a course_lib dataclass) and the derived ModelConfig
    copy = _roundtrip(gpt)
    assert copy.config == TINY and copy.cfg == gpt.cfg
    assert gpt.lm_head.weight is gpt.wte.weight  # tied: one parameter, sent once
    assert copy.lm_head.weight is copy.wte.weight
    assert [n for n, _ in copy.named_parameters()] == [n for n, _ in gpt.named_parameters()]
    x = torch.randint(0, TINY.vocab_size, (2, 5))
    assert torch.equal(copy(x), gpt(x))


def test_wire_refuses_code_and_inconsistent_data():
    budget = wire.Budget(2**20)
    bad = [
        {"t": "array", "a": {"dtype": "|O", "shape": [1], "b64": "gASVAAAAAAAAAAA="}},  # pickle
        {"t": "array", "a": {"dtype": "<f8", "shape": [3], "b64": "AAAAAAAAAAA="}},  # 8 bytes
        {"t": "array", "a": {"dtype": "<f8", "shape": [-1], "b64": ""}},
        {"t": "exec", "v": "import os"},
        {"t": "list", "v": "not a list"},
        {"t": "set", "v": [{"t": "list", "v": []}]},  # an unhashable member
        "just a string",
    ]
    for node in bad:
        with pytest.raises(wire.WireError):
            wire.decode(node, budget)
    deep: dict = {"t": "none"}
    for _ in range(wire.MAX_DEPTH + 2):
        deep = {"t": "list", "v": [deep]}
    with pytest.raises(wire.WireError, match="deeper"):
        wire.decode(deep, budget)
    with pytest.raises(wire.WireError, match="bytes"):
        wire.encode(np.zeros(1000), wire.Budget(100))
    assert isinstance(_roundtrip(object()), wire.Unsupported)


def _nbgrader_utils():
    """nbgrader/utils.py alone: importing the nbgrader package loads its whole server."""
    import importlib.util

    spec = importlib.util.find_spec("nbgrader")
    path = Path(next(iter(spec.submodule_search_locations))) / "utils.py"
    module_spec = importlib.util.spec_from_file_location("nbgrader_utils", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_checksum_is_nbgrader_checksum():
    from nbformat.notebooknode import from_dict

    compute_checksum = _nbgrader_utils().compute_checksum

    for folder in ("solutions", "exercises"):
        for path in sorted((ROOT / folder).glob("*/*.ipynb")):
            nb = json.loads(path.read_text())
            for raw, cell in zip(
                nb["cells"], parse_notebook(path.read_bytes(), 2**30), strict=True
            ):
                node = from_dict(raw)
                node.source = cell.source
                if "nbgrader" in node.metadata:
                    assert checksum(cell) == compute_checksum(node), (path, cell.grade_id)
    weird = parse_notebook(_nb([{"grade": True, "grade_id": "x", "points": "lots"}]), 2**20)[0]
    assert checksum(weird) is None  # nbgrader raises ValueError on it: a modified cell


def _nb(metas: list[dict], sources: list[str] | None = None) -> bytes:
    cells = [
        {
            "cell_type": "code",
            "metadata": {"nbgrader": m},
            "source": (sources or ["pass"] * len(metas))[i],
        }
        for i, m in enumerate(metas)
    ]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b'{"cells": [', "not valid JSON"),
        (b'"text"', "not a Jupyter notebook"),
        (b'{"nbformat": 3, "cells": []}', "format 3"),
        (b'{"nbformat": 4, "cells": [{"cell_type": "python"}]}', "cell 1 is malformed"),
        (b'{"nbformat": 4, "cells": [{"cell_type": "code", "source": 5}]}', "source is not text"),
        (b"[" * 100_000, "not valid JSON"),
        (b"x" * 2000, "larger than"),
    ],
)
def test_unreadable_notebooks_say_why(data, message):
    with pytest.raises(NotebookError, match=message):
        parse_notebook(data, 1000 if message == "larger than" else 2**30)


def _assignment():
    source = parse_notebook(PS01.read_bytes(), 2**30)
    release = parse_notebook((ROOT / "exercises/ps01/ps01.ipynb").read_bytes(), 2**30)
    return assignment_cells(source, release)


def test_script_takes_setup_from_the_source_and_never_runs_test_cells():
    nb = synthetic.correct(ROOT, "ps01")
    synthetic.set_cell(nb, "setup", "import os\nos._exit(1)\n")
    synthetic.set_cell(nb, "test_ex1_dot_random", "raise SystemExit")
    extra = {"cell_type": "code", "metadata": {}, "source": "%time helper = 1\n!ls /\n"}
    nb["cells"].insert(4, extra)  # after ex1_dot
    script = learner_script(parse_notebook(json.dumps(nb).encode(), 2**30), _assignment())
    ids = [c["id"] for c in script]
    assert ids == ["setup", "ex1_dot", "added-5", "ex2_cosine", "ex3_top_k", "ex4_analogy"]
    assert "os._exit" not in script[0]["source"] and script[0].get("trusted")
    assert not any("SystemExit" in c["source"] for c in script)
    assert "get_ipython().run_line_magic('time', 'helper = 1')" in script[2]["source"]
    assert "get_ipython().system('ls /')" in script[2]["source"]


def test_scan_finds_tampering_and_reference_use_but_not_honest_code():
    spec = load_spec("ps01")
    hidden = hidden_objects(spec.hidden_references)
    trusted = {"setup"}
    honest = learner_script(
        parse_notebook(json.dumps(synthetic.correct(ROOT, "ps01")).encode(), 2**30), _assignment()
    )
    assert scan(honest, hidden, trusted) == []
    code = (
        "import numpy as n\nfrom course_lib.embeddings import dot as d\nimport course_lib.embeddings.similarity as s\n"
        "n.allclose = lambda *a: True\nget_ipython()\nopen('../solutions/ps01/ps01.ipynb')\n"
        "embedding_cases._cosine\nimport sys\nsys.exit(0)\n"
    )
    setup = [c for c in honest if c["id"] == "setup"]
    found = {
        (f.kind, f.detail)
        for f in scan([*setup, {"id": "ex1_dot", "source": code}], hidden, trusted)
    }
    assert ("reference", "uses course_lib.embeddings.similarity") in found  # both imports
    assert ("reference", "uses course_lib.grading.embedding_cases._cosine") in found
    assert ("tamper", "replaces numpy.allclose") in found
    assert ("ipython", "uses get_ipython") in found and ("exit", "calls sys.exit()") in found
    assert any(kind == "files" for kind, _ in found)


def test_collect_reads_every_layout_without_writing(tmp_path):
    nb = json.dumps(synthetic.correct(ROOT, "ps01")).encode()
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "alice.ipynb").write_bytes(nb)
    (flat / "bob.ipynb").write_bytes(b"")
    (flat / ".ipynb_checkpoints").mkdir()
    (flat / ".ipynb_checkpoints" / "alice-checkpoint.ipynb").write_bytes(nb)
    got = collect(flat, "ps01", "ps01.ipynb", 2**30)
    assert [(s.student, s.data == nb) for s in got] == [("alice", True), ("bob", False)]

    course = tmp_path / "course" / "submitted"
    (course / "carol" / "ps01").mkdir(parents=True)
    (course / "carol" / "ps01" / "ps01.ipynb").write_bytes(nb)
    (course / "carol" / "ps01" / "scratch.ipynb").write_bytes(b"{}")
    (course / "dave" / "ps01").mkdir(parents=True)
    (course / "erin" / "ps04").mkdir(parents=True)  # another assignment: not a ps01 student
    got = {s.student: s for s in collect(course.parent, "ps01", "ps01.ipynb", 2**30)}
    assert sorted(got) == ["carol", "dave"] and got["carol"].data == nb
    assert "no notebook" in got["dave"].problem

    archive = tmp_path / "lms.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("smithjane_late_1234_5678_ps01.ipynb", nb)  # Canvas
        zf.writestr("Jo Doe_4321_assignsubmission_file_/ps01.ipynb", nb)  # Moodle
        zf.writestr("../../escape/ps01.ipynb", nb)
        zf.writestr("big_1_2_ps01.ipynb", b"x" * 300_000)
        zf.writestr("__MACOSX/._x.ipynb", b"junk")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    got = {s.student: s for s in collect(archive, "ps01", "ps01.ipynb", 200_000)}
    assert sorted(got) == ["Jo_Doe", "big", "escape", "smithjane"]
    assert "larger than" in got["big"].problem and got["smithjane"].data == nb
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert student_id("../../etc/passwd") == "etc_passwd" and student_id("") == "unnamed"


def _run(source: str) -> tuple[TestCell, TestRun]:
    """Run a tiny test cell here, as verify.run_tests does, and return what it ended with."""
    test = TestCell("test_x", 2, source, spec_module._hidden_lines(source), frozenset({"add"}))

    def add(a, b):
        if a == 0:
            raise learner_exception("ZeroDivisionError", "ZeroDivisionError: secret-message", True)
        return a + b + (a > 100)

    ns = {"check_value": check_value, "add": add}
    try:
        exec(compile(source, "<test test_x>", "exec"), ns)
    except Exception as exc:
        return test, TestRun("test_x", exc, traceback.extract_tb(exc.__traceback__))
    return test, TestRun("test_x", None)


VISIBLE = "check_value(add(1, 2), 3, atol=0, rtol=0, name='small')\n"
HIDDEN = (
    "### BEGIN HIDDEN TESTS\n"
    "check_value(add(123456, 654321), 777777, atol=0, rtol=0, name='secret-label')\n"
    "### END HIDDEN TESTS\n"
)


def test_feedback_shows_visible_failures_and_hides_hidden_tests():
    test, run = _run(VISIBLE + HIDDEN.replace("add(123456, 654321), 777777", "add(2, 2), 4"))
    ok = outcome(test, run, Limits(), [])
    assert (ok.score, ok.status) == (2.0, "ok")
    test, run = _run(VISIBLE.replace("3,", "4,") + HIDDEN)
    shown = outcome(test, run, Limits(), [])
    assert shown.score == 0 and "expected 4, got 3" in shown.feedback and "small" in shown.feedback
    test, run = _run(VISIBLE + HIDDEN)
    hidden = outcome(test, run, Limits(), [])
    assert hidden.score == 0 and hidden.status == "ok" and "hidden test failed" in hidden.feedback
    for secret in ("123456", "654321", "777777", "secret-label"):
        assert secret not in hidden.feedback
    assert "hidden test" in hidden.reason  # the instructor may see more
    test, run = _run(VISIBLE + HIDDEN.replace("123456", "0"))
    raised = outcome(test, run, Limits(), [])
    assert "ZeroDivisionError" in raised.feedback and "secret-message" not in raised.feedback


def test_view_has_tripwires_not_the_reference(tmp_path):
    view = build_view(tmp_path, load_spec("ps01").hidden_references)
    stub = (view / "embeddings" / "similarity.py").read_text()
    assert "np.sum" not in stub and "def dot" not in stub
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import course_lib.embeddings.similarity as s; import course_lib.grading.embedding_cases as e\n"
        "try:\n    s.dot([1], [2])\nexcept RuntimeError as x:\n    print(x)\n"
        "try:\n    e._cosine([1], [[2]])\nexcept RuntimeError as x:\n    print(x)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}
    done = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert done.stdout.count("reference implementation") == 2, done.stderr


def test_cli_help_and_clear_errors(tmp_path):
    run = [sys.executable, "-m", "autograder", "grade"]
    shown = subprocess.run([*run, "--help"], capture_output=True, text=True, cwd=ROOT)
    for words in (
        "grades.csv",
        "flagged",
        "submitted/<student>/<assignment>",
        "--scheduler",
        "--memory",
    ):
        assert words in shown.stdout
    bad = subprocess.run(
        [*run, "ps99", str(ROOT / "exercises"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "no grading spec for 'ps99'" in bad.stderr
    assert not (tmp_path / "o").exists()


def test_zip_bytes_are_not_extracted(tmp_path):
    """A zip whose entry claims to be small but inflates beyond the cap is refused."""
    archive = tmp_path / "bomb.zip"
    payload = b"{" + b" " * (3 * 2**20) + b"}"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("alice_1_2_ps01.ipynb", payload)
    raw = bytearray(archive.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        assert zf.infolist()[0].file_size == len(payload)
    got = collect(archive, "ps01", "ps01.ipynb", 2**20)
    assert got[0].data is None and "larger than" in got[0].problem
