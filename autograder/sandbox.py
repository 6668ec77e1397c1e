"""Run the harness on one submission in a fresh sandboxed process, with resource limits.

Preferred: bubblewrap (`bwrap`). The process gets new PID, network, IPC and UTS namespaces
(no network at all), a read-only view of the Python installation and of the course_lib view
(reference modules replaced by tripwires), the job files read-only, and a private size-capped
tmpfs as its only writable place; the repository, solutions/, the gradebook, --out and other
submissions do not exist in it. As root, a template sandbox (never running learner code)
forks each submission into its own namespaces, tmpfs and fresh unprivileged uid
(autograder.isolate; RLIMIT_NPROC then stops fork bombs); otherwise each submission gets a
bubblewrap sandbox of its own, in a user namespace that cannot create further ones.

Fallback without bubblewrap: a plain child process with the same rlimits (as a fresh uid when
root). `Isolation.missing` lists what is then not protected, and the batch log says it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HARNESS_FILES = (
    "harness.py",
    "isolate.py",
    "serve.py",
    "wire.py",
    "wire_torch.py",
)  # copied into the sandbox, read-only


TEMPLATE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID")  # namespaces, mounts, uid


@dataclass(frozen=True)
class Limits:
    """Per-submission limits; the defaults are far above what a normal solution needs."""

    wall_seconds: float = 300.0  # whole submission: cells + every graded call
    cpu_seconds: int = 300  # RLIMIT_CPU of each process
    memory_mb: int = 2048  # RLIMIT_AS (address space) of each process
    part_seconds: float = 60.0  # one cell, or all calls of one graded part
    processes: int = 64  # RLIMIT_NPROC: processes and threads
    tmp_mb: int = 256  # size of the private /tmp (bubblewrap) and RLIMIT_FSIZE
    output_bytes: int = 64 * 1024  # printed output kept for the log
    result_bytes: int = 256 * 2**20  # data the sandbox may send back in all
    reply_bytes: int = 64 * 2**20  # data in one reply (one call's output)

    def for_harness(self, processes_relative: bool) -> dict:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_mb": self.memory_mb,
            "part_seconds": self.part_seconds,
            "processes": self.processes,
            "processes_relative": processes_relative,
            "file_bytes": self.tmp_mb * 2**20,
            "reply_bytes": self.reply_bytes,
        }


@dataclass(frozen=True)
class Isolation:
    """Which sandbox runs learner code, and what is not protected in this mode."""

    mode: str  # "bwrap" or "rlimits"
    as_root: bool
    missing: tuple[str, ...] = ()
    why: str = ""  # why bubblewrap is not used

    def describe(self) -> str:
        who = "a fresh unprivileged uid" if self.as_root else "your own uid"
        if self.mode == "bwrap":
            how = (
                "forked from a template into its own PID, mount and IPC namespaces"
                if self.as_root
                else "in a sandbox of its own"
            )
            return (
                f"sandbox: bubblewrap (no network, private /tmp, read-only runtime, "
                f"no repository files, no user namespaces); each submission runs {how}, "
                f"as {who}, with rlimits"
            )
        lines = [f"WARNING: bubblewrap not used ({self.why}); learner code runs with rlimits only,"]
        lines += [f"WARNING:   missing protection: {m}" for m in self.missing]
        return "\n".join(lines)


class SandboxUnavailable(RuntimeError):
    """`--sandbox bwrap` was asked for but bubblewrap does not work here."""


def python_roots() -> list[str]:
    """The Python installation and virtualenv folders learner code needs (read-only)."""
    roots = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)}
    return sorted(r for r in roots if not r.startswith("/usr/"))


def bwrap_command(mounts: list[tuple[str, str]], tmp_mb: int, as_root: bool) -> list[str]:
    """The bwrap prefix: namespaces, the runtime read-only, private /tmp, `mounts` read-only."""
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net"]
    cmd += ["--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if not as_root:
        cmd += ["--unshare-user", "--disable-userns"]
    cmd += ["--ro-bind", "/usr", "/usr", "--proc", "/proc", "--dev", "/dev"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    cmd += ["--size", str(tmp_mb * 2**20), "--perms", "1777", "--tmpfs", "/tmp"]
    cmd += ["--perms", "1777", "--dir", "/tmp/work"]
    mounted, made = {"/usr", "/proc", "/dev"}, {"/", "/tmp", "/tmp/work"}
    for source, dest in [(r, r) for r in python_roots()] + mounts:
        cmd += _parents(dest, mounted, made) + ["--ro-bind", source, dest]
        mounted.add(dest)
    return cmd


def _parents(dest: str, mounted: set[str], made: set[str]) -> list[str]:
    """`--dir` for each missing parent of `dest`, world-traversable (bwrap's default is 0700)."""
    out = []
    for parent in map(str, reversed(Path(dest).parents)):
        if parent in made or any(parent == m or parent.startswith(m + "/") for m in mounted):
            continue
        out += ["--perms", "0755", "--dir", parent]
        made.add(parent)
    return out


@lru_cache(maxsize=4)
def probe(mode: str = "auto") -> Isolation:
    """Find out whether bubblewrap works here; `mode` is "auto", "bwrap" or "none"."""
    as_root = os.geteuid() == 0
    why = "--sandbox none was given"
    if mode != "none":
        why = _bwrap_problem(as_root)
        if not why:
            return Isolation("bwrap", as_root)
        if mode == "bwrap":
            raise SandboxUnavailable(f"bubblewrap does not work here: {why}")
    missing = [
        "filesystem isolation: learner code can read every file the grading user can "
        "(solutions/, the gradebook, other students' submissions)",
        "network isolation",
        "a private process namespace (learner processes can see the grader's)",
    ]
    if not as_root:
        missing.append(
            "a separate user: learner code runs as you and can modify your files, the "
            "grader's included (run as root, or install bubblewrap)"
        )
    elif not _python_runs_as(fresh_uid()):
        raise SandboxUnavailable(
            f"bubblewrap is not used ({why}), and this Python ({sys.executable}) cannot run as "
            "an unprivileged user; learner code would run as root, where nothing stops a fork "
            "bomb. Install bubblewrap (apt-get install bubblewrap) or grade as a normal user."
        )
    return Isolation("rlimits", as_root, tuple(missing), why)


def _python_runs_as(uid: int) -> bool:
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import numpy"], user=uid, group=uid, extra_groups=[],
            capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/",
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _bwrap_problem(as_root: bool) -> str:
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (apt-get install bubblewrap)"
    cmd = bwrap_command([], 16, as_root)
    cmd += [a for cap in TEMPLATE_CAPS for a in ("--cap-add", cap)] if as_root else []
    cmd += ["--", sys.executable, "-c", ""]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if done.returncode != 0:
        return "bwrap failed: " + done.stderr.decode(errors="replace").strip()[:300]
    return ""


def fresh_uid() -> int:
    """A uid no one else uses, so RLIMIT_NPROC counts only this sandbox's processes."""
    return 200_000 + secrets.randbelow(1_000_000_000)


def sandbox_env(home: str) -> dict[str, str]:
    """The whole environment of learner code: nothing inherited from the grader."""
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **threads,
    }
