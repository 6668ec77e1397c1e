"""What a grading process sets up once per assignment: workspace, course_lib view, sandbox.

One `Context` per (assignment, options) and process: each worker (local pool or Dask)
builds its own from the `Bundle` it receives. The workspace is a private temporary folder
(removed at exit) holding the harness, the learner's view of course_lib and one
short-lived folder per sandbox.

With bubblewrap as root, one template sandbox per worker imports the assignment's libraries
once and forks each submission into its own namespaces, tmpfs and uid (autograder.isolate),
so a submission costs a fork, not a Python start and `import torch`. Otherwise (bubblewrap
as a normal user, or the rlimits-only fallback) every submission gets a sandbox of its own,
started for it and killed as a whole after it.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from autograder import sandbox
from autograder.notebook import python_source
from autograder.process import Sandbox, Session, Stopped
from autograder.sandbox import HARNESS_FILES, Isolation, Limits
from autograder.spec import Bundle, Prepared, prepare
from autograder.view import build_view, course_lib_dir, hidden_objects

_HERE = Path(__file__).resolve().parent
_SYSTEM_READ = [
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/etc",
    "/proc",
    "/sys",
    "/dev",
]


@dataclass(frozen=True)
class Options:
    """How to grade: limits, sandbox mode, and the paths learner code must never reach."""

    limits: Limits = Limits()
    sandbox: str = "auto"  # "auto", "bwrap" or "none"
    max_notebook_bytes: int = 50 * 2**20
    sensitive: tuple[str, ...] = ()  # submissions dir, --out, course root (absolute paths)


class Context:
    """An assignment ready to grade in this process, with its sandbox set up."""

    def __init__(self, bundle: Bundle, options: Options):
        self.options = options
        self.isolation: Isolation = sandbox.probe(options.sandbox)
        self.prepared: Prepared = prepare(bundle)
        self.hidden = hidden_objects(self.prepared.spec.hidden_references)
        self.root = Path(tempfile.mkdtemp(prefix="autograder-"))
        os.chmod(self.root, 0o711)  # others may traverse (fallback uid) but not list
        atexit.register(shutil.rmtree, self.root, True)
        self.shared = self.root / "shared"
        self.shared.mkdir(mode=0o755)
        for name in HARNESS_FILES:
            shutil.copy(_HERE / name, self.shared / name)
        self.data = self.root / "data"
        self.data.mkdir(mode=0o755)
        for name, content in bundle.data_files:
            (self.data / name).write_bytes(content)
        self.view = build_view(self.root / "view", self.prepared.spec.hidden_references)
        for path in (self.shared, self.data):
            for p in [path, *path.iterdir()]:
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
        self.course_lib = course_lib_dir()
        self.setup_script = [
            {"id": c.grade_id, "source": python_source(c.source)} for c in self.prepared.setup
        ]
        self.zygote: Sandbox | None = None
        atexit.register(self.close)

    @property
    def workspace_roots(self) -> list[str]:
        """Paths whose access by learner code is an attempt to reach grader files."""
        return [str(self.root), *self.options.sensitive]

    @property
    def template(self) -> bool:
        """Whether submissions fork from one long-lived template (bubblewrap as root)."""
        return self.isolation.mode == "bwrap" and self.isolation.as_root

    def start(self, script: list[dict], wall: float) -> Session:
        """A fresh process tree for one submission: it runs the learner's cells, then answers."""
        cells = [c for c in script if not c.get("trusted")]  # the template ran the set-up cells
        if not self.template:
            return Session(self._start_zygote(), cells, wall, uid=-1, owned=True)
        if self.zygote is None or self.zygote.closed:
            self.zygote = self._start_zygote()
        return Session(self.zygote, cells, wall, uid=sandbox.fresh_uid(), owned=False)

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    def _start_zygote(self) -> Sandbox:
        job = Path(tempfile.mkdtemp(prefix="job-", dir=self.root))
        os.chmod(job, 0o755)
        limits = dataclasses.replace(self.options.limits, wall_seconds=10.0**9)
        try:
            box = self._launch(job, limits)
        except BaseException:
            shutil.rmtree(job, ignore_errors=True)
            raise
        box.on_close = lambda: shutil.rmtree(job, ignore_errors=True)
        try:
            ready = box.ready(timeout=max(120.0, self.options.limits.wall_seconds))
        except (Stopped, TimeoutError):
            info = box.close()
            output = info.output.decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"the sandbox did not start: {output or 'no output'}") from None
        errors = ready.get("errors") if isinstance(ready.get("errors"), dict) else {}
        if errors:
            box.close()
            raise RuntimeError(f"the set-up cells fail in the sandbox: {errors}")
        return box

    def _launch(self, job: Path, limits: Limits) -> Sandbox:
        iso = self.isolation
        python_roots = sandbox.python_roots()
        if iso.mode == "bwrap":
            workdir, grader, job_in = "/tmp/work", "/grader", "/job"
            mounts = [(str(self.shared), grader), (str(job), job_in)]
            mounts.append((str(self.view), str(self.course_lib)))
            read_roots = [*python_roots, str(self.course_lib), grader, job_in]
            write_roots, wipe = ["/tmp", "/dev/null"], ["/tmp", "/dev/shm"]
            parent = str(self.course_lib.parent)
        else:
            work = job / "work"
            work.mkdir(mode=0o700)
            workdir, grader, job_in = str(work), str(self.shared), str(job)
            read_roots = [*python_roots, str(self.view), grader, job_in]
            write_roots, wipe = [workdir, "/dev/null"], [workdir]
            parent = str(self.view.parent)
        template = self.template
        uid = sandbox.fresh_uid() if iso.as_root and not template else None
        if uid is not None and iso.mode != "bwrap":
            os.chown(work, uid, uid)
        payload = {
            "setup": [c for c in self.setup_script],
            "data": str(self.data) if iso.mode != "bwrap" else "/data",
            "own_uid": uid is not None or iso.mode == "bwrap",
            "isolate": template,  # each job in its own namespaces and uid
            "reuse": template,  # otherwise one submission per sandbox
            "limits": limits.for_harness(processes_relative=not iso.as_root),
            "course_lib_parent": parent,
            "workdir": workdir,
            "wipe": wipe,
            "read_roots": [*read_roots, *_SYSTEM_READ, workdir, "/data"],
            "keep": _below_tmp([*python_roots, str(self.course_lib)]) if template else [],
            "write_roots": write_roots,
        }
        (job / "job.json").write_text(json.dumps(payload))
        os.chmod(job / "job.json", 0o644)
        env = sandbox.sandbox_env(workdir)
        python = [os.path.abspath(sys.executable), "-s", "-B"]
        harness = [*python, f"{grader}/harness.py", job_in, "{ctl}", "{job}"]
        if iso.mode == "bwrap":
            mounts.append((str(self.data), "/data"))
            cmd = sandbox.bwrap_command(mounts, limits.tmp_mb, iso.as_root)
            if template:  # what isolate.enter needs; dropped for good in each submission
                cmd += [a for cap in sandbox.TEMPLATE_CAPS for a in ("--cap-add", cap)]
            cmd += ["--chdir", "/tmp", "--"]
            return Sandbox(cmd + harness, env, limits, None, "/")
        env["TMPDIR"] = workdir
        return Sandbox(harness, env, limits, uid, workdir)


def _below_tmp(paths: list[str]) -> list[str]:
    """The read-only mounts below /tmp that each submission's fresh /tmp must keep (a
    repository or virtualenv cloned under /tmp), outermost only."""
    kept: list[str] = []
    for path in sorted(p.rstrip("/") for p in paths if p.startswith("/tmp/")):
        if not any(path.startswith(k + "/") or path == k for k in kept):
            kept.append(path)
    return kept


_CONTEXTS: dict[tuple, Context] = {}
_LOCK = threading.Lock()


def get_context(bundle: Bundle, options: Options) -> Context:
    """The process's Context for this assignment and options (built on first use)."""
    key = (bundle.digest, options)
    with _LOCK:
        if key not in _CONTEXTS:
            _CONTEXTS[key] = Context(bundle, options)
        return _CONTEXTS[key]
