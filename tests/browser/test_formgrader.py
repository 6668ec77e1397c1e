"""formgrader in the browser: nbgrader's own grading UI on a course the autograder recorded.

A copy of the course grades one ps01 learner with `python -m autograder grade`, records it
with `python -m autograder gradebook`, then serves it with `jupyter server` and nbgrader's
formgrader extension (127.0.0.1, no token, from the course folder, as nbgrader's docs run
it). In Debian's Chromium (Playwright, requests off 127.0.0.1 blocked), formgrader's page of
the learner's submission must show their written answer with its score box marked as needing
a manual grade, and a score typed there must be stored in nbgrader's gradebook and shown
again after a reload. Run with `bash scripts/browser_tests.sh` or `pytest tests/browser/...`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from book_site import open_page

from autograder import synthetic
from autograder.__main__ import main
from autograder.gradebook import alembic_on_path, course_config

ROOT = Path(__file__).resolve().parents[2]
WRITTEN = "ex5_answer"
ANSWER = "Cosine similarity ignores how long the vectors are, only their angle counts."
STARTUP_S = 120
MATHJAX_CDN = "https://cdnjs.cloudflare.com"
OFFLINE_MATHJAX_ERRORS = {
    "Failed to load resource: net::ERR_FAILED",
    "uncaught: MathJax is not defined",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, server: subprocess.Popen, log: Path) -> None:
    end = time.monotonic() + STARTUP_S
    while time.monotonic() < end:
        if server.poll() is not None:
            pytest.fail(f"jupyter server exited {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"formgrader did not answer in {STARTUP_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def formgrader(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL of a running formgrader, its course) with one learner recorded."""
    base = tmp_path_factory.mktemp("formgrader")
    course = synthetic.course_folder(ROOT, base / "course")
    nb = synthetic.correct(ROOT, "ps01")
    synthetic.set_cell(nb, WRITTEN, ANSWER + "\n")
    subs = synthetic.write_class({"ada": ("correct", nb)}, base / "subs", "ps01", "ps01.ipynb")
    out = base / "out"
    argv = ["grade", "ps01", str(subs), "--out", str(out), "--jobs", "1", "--no-progress"]
    assert main([*argv, "--course-root", str(course)]) == 0
    assert main(["gradebook", str(out), "--course", str(course)]) == 0

    port = _free_port()
    alembic_on_path()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    config = base / "jupyter-config"  # the only user config: formgrader on, no token
    config.mkdir()
    settings = {
        "ServerApp": {
            "ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False,
            "password": "", "root_dir": str(course), "allow_root": True,
            "jpserver_extensions": {"nbgrader.server_extensions.formgrader": True},
        },
        "IdentityProvider": {"token": ""},
    }  # fmt: skip
    (config / "jupyter_server_config.json").write_text(json.dumps(settings))
    cmd = [sys.executable, "-m", "jupyter_server"]
    log = base / "server.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(cmd, cwd=course, env=env, stdout=log_file, stderr=log_file)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait(url + "formgrader/", server, log)
        yield url, course
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _gradebook(course: Path):
    from nbgrader.api import Gradebook

    cd = course_config(course).CourseDirectory
    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", cd.course_id)


def test_formgrader_shows_the_written_answer_and_stores_a_grade(browser, formgrader):
    url, course = formgrader
    with _gradebook(course) as gb:
        notebook_id = gb.find_submission_notebook("ps01", "ps01", "ada").id
        grade = gb.find_grade(WRITTEN, "ps01", "ps01", "ada")
        assert (grade.manual_score, grade.needs_manual_grade) == (None, True)

    visit = open_page(browser, url, f"formgrader/submissions/{notebook_id}/")
    page = visit.page
    try:
        assert not visit.failed_requests, visit.failed_requests
        cell = page.locator(".nbgrader_cell").filter(has=page.locator(f"input.score#{WRITTEN}"))
        assert cell.count() == 1
        assert ANSWER in cell.inner_text()  # the learner's answer, rendered
        score = page.locator(f"input.score#{WRITTEN}")
        page.wait_for_function(
            f"document.querySelector('input.score#{WRITTEN}').classList.contains('needs_manual_grade')"
        )
        assert score.input_value() == ""  # nobody graded it yet

        with page.expect_response(
            lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"
        ) as saved:
            score.fill("1.5")
            score.press("Tab")  # formgrader saves on change
        assert saved.value.ok
        with _gradebook(course) as gb:
            grade = gb.find_grade(WRITTEN, "ps01", "ps01", "ada")
            assert (grade.manual_score, grade.needs_manual_grade) == (1.5, False)

        page.reload(wait_until="networkidle")
        assert page.locator(f"input.score#{WRITTEN}").input_value() == "1.5"
        # formgrader's page loads MathJax 2 from cdnjs; offline that request is blocked, which
        # costs only math rendering (and logs these errors). Nothing else may fail or leave.
        assert {u.split("/ajax/libs/")[0] for u in visit.external_requests} <= {MATHJAX_CDN}
        assert set(visit.console_errors) <= OFFLINE_MATHJAX_ERRORS, visit.console_errors
    finally:
        page.context.close()
