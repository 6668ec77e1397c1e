"""Runs INSIDE the sandbox: a zygote that forks one fresh process per submission.

`python harness.py <job dir> <result fd> <request fd> <control out fd> <control in fd>`.
Children talk on the result/request pipes; the zygote alone uses the control pipes (jobs
in, "zygote ready" and exit statuses out), which every child closes at once, so a child
cannot forge how it ended nor see the next job. The job dir (read-only) holds
`job.json`: the assignment's set-up cells (trusted source code), limits, and the paths the
sandbox is expected to touch. The zygote applies the limits, runs the set-up cells once
(imports included), makes itself non-dumpable (so no process of its uid can read or trace
it), and waits. For each submission the grader sends the learner's cells; the zygote forks
a child that runs them, lists the learner's names and answers requests (autograder.serve)
until told it is done. Then the zygote kills whatever the child left running, wipes the
writable folders and reports how the child ended. A child never sees another submission:
children run one after the other and each starts from the zygote's pristine state.

Nothing a child does is trusted by the grader. This file is copied into the sandbox with
serve.py and wire.py; it imports only the standard library, NumPy and those two.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.abc
import importlib.machinery
import json
import linecache
import os
import resource
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve  # noqa: E402
from serve import Channel, Timeout, error_text, run_limited  # noqa: E402

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_FS_EVENTS = {  # audit event -> index of its path argument(s), and whether it writes
    "os.listdir": ((0,), False),
    "os.scandir": ((0,), False),
    "glob.glob": ((0,), False),
    "os.chdir": ((0,), False),
    "os.remove": ((0,), True),
    "os.rmdir": ((0,), True),
    "os.mkdir": ((0,), True),
    "os.rename": ((0, 1), True),
    "os.truncate": ((0,), True),
    "os.chmod": ((0,), True),
    "os.link": ((0, 1), True),
    "os.symlink": ((0, 1), True),
    "shutil.rmtree": ((0,), True),
}


class _Shell:
    """What `get_ipython()` returns while grading: magics and shell commands do nothing."""

    def __init__(self, namespace: dict):
        self._ns = namespace

    def run_line_magic(self, name, line, _stack_depth=1):
        if name in ("time", "timeit"):
            exec(compile(line, "<magic>", "exec"), self._ns)

    def run_cell_magic(self, name, line, cell):
        if name in ("time", "timeit", "capture"):
            exec(compile(cell, "<magic>", "exec"), self._ns)

    def system(self, cmd):
        return None

    def getoutput(self, cmd, split=True):
        return []

    def __getattr__(self, name):
        raise AttributeError(f"get_ipython().{name} is not available while grading")


class _ViewFinder(importlib.abc.MetaPathFinder):
    """Imports `course_lib` only from the sandbox's view of it (reference modules stubbed)."""

    def __init__(self, parent: str):
        self.parent = parent

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "course_lib":
            return importlib.machinery.PathFinder.find_spec(fullname, [self.parent])
        if fullname.startswith("course_lib."):
            return importlib.machinery.PathFinder.find_spec(fullname, path)
        return None


class _Watch:
    """Audit hook: reports reference calls and file access outside the expected places."""

    def __init__(self, channel: Channel, read_roots: list[str], write_roots: list[str]):
        self.channel, self.read_roots, self.write_roots = channel, read_roots, write_roots
        self.ancestors = {p for r in read_roots for p in _ancestors(r)}  # listed by imports
        self.phase: dict = {}
        self.seen: set = set()
        self.busy = False

    def __call__(self, event: str, args: tuple) -> None:
        if self.busy or len(self.seen) > 64:
            return
        self.busy = True
        try:
            self._check(event, args)
        except Exception:
            pass
        finally:
            self.busy = False

    def _check(self, event: str, args: tuple) -> None:
        if event == "autograder.reference":
            self._report("reference", str(args[0]))
        elif event == "open":
            path, mode, flags = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            self._path(path, bool(writes))
        elif event in _FS_EVENTS:
            indices, writes = _FS_EVENTS[event]
            for i in indices:
                self._path(args[i], writes)

    def _path(self, path, writes: bool) -> None:
        if not isinstance(path, (str, bytes)):
            return
        full = os.path.abspath(os.fsdecode(path))
        if not _under(full, self.read_roots) and full not in self.ancestors:
            writable = _under(full, self.write_roots)
            self._report("write" if writes and not writable else "path", full, writes)

    def _report(self, kind: str, detail: str, writes: bool = False) -> None:
        key = (kind, detail, *self.phase.values())
        if key not in self.seen:
            self.seen.add(key)
            event = {"k": "event", "kind": kind, "detail": detail[:500], "writes": writes}
            self.channel.send({**event, **self.phase})


def _ancestors(path: str) -> list[str]:
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:i]) or "/" for i in range(1, len(parts))]


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _ancestors(path: str) -> list[str]:
    parts = path.rstrip("/").split("/")
    return ["/".join(parts[:i]) or "/" for i in range(1, len(parts))]


def _zygote_limits(limits: dict) -> None:
    """Limits on the whole sandbox: files, core dumps, processes (and threads)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = int(limits["processes"])
    if limits.get("processes_relative"):  # our uid is shared: allow this many more than now
        nproc += _processes_of(os.getuid())
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _child_limits(limits: dict) -> None:
    """Limits on one submission's process: CPU time and address space."""
    cpu, memory = int(limits["cpu_seconds"]), int(limits["memory_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _processes_of(uid: int) -> int:
    count = 0
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/status") as f:
                count += any(line.split()[1:2] == [str(uid)] for line in f if line[:4] == "Uid:")
        except (OSError, ValueError):
            continue
    return count


def _others(keep: set[int]) -> list[int]:
    """Live (not zombie) processes of our uid other than `keep`, in our PID namespace."""
    uid, found = str(os.getuid()), []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in keep:
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{name}/status") as f,
            ):
                fields = dict(line.split(":", 1) for line in f if ":" in line)
                if fields["Uid"].split()[0] == uid and not fields["State"].strip().startswith("Z"):
                    found.append(int(name))
    return found


def _kill_others(keep: set[int], own_uid: bool) -> None:
    """Kill what learner code left running (only when this uid belongs to the sandbox).

    Everything is stopped first (a stopped process cannot fork, so a fork bomb cannot
    outrun the loop), then killed.
    """
    if not own_uid:
        return
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        seen: set[int] = set()
        for _ in range(500):
            pids = set(_others(keep))
            if pids <= seen and sig == signal.SIGSTOP or not pids:
                break
            seen |= pids
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            if sig == signal.SIGKILL:
                time.sleep(0.005)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:  # collect our own killed children
            pass


def _wipe(folders: list[str]) -> None:
    """Empty the writable folders between two submissions."""
    for folder in folders:
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                with contextlib.suppress(OSError):
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


def _run_cells(cells: list[dict], ns: dict, channel: Channel, watch: _Watch, limit: float):
    for cell in cells:
        name = f"<cell {cell['id']}>"
        source = cell["source"]
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        watch.phase = {"cell": cell["id"]}
        channel.send({"k": "cell", "id": cell["id"]})
        start, error = time.perf_counter(), None
        try:
            run_limited(limit, lambda s=source, n=name: exec(compile(s, n, "exec"), ns))
        except Timeout:
            error = f"TimeoutError: the cell ran longer than {limit:g} s"
        except BaseException as exc:
            error = error_text(exc)
        seconds = time.perf_counter() - start
        channel.send({"k": "cell_done", "id": cell["id"], "error": error, "seconds": seconds})


def _child(job: dict, config: dict, ns: dict, channel: Channel, watch: _Watch, read) -> None:
    """One submission: its cells, then requests until "done". Never returns."""
    zygote = os.getppid()
    for fd in config["control_fds"]:  # the zygote's pipes: not for learner code
        with contextlib.suppress(OSError):
            os.close(fd)
    channel.pid = os.getpid()
    limits = config["limits"]
    _child_limits(limits)
    os.makedirs(config["workdir"], exist_ok=True)
    os.chdir(config["workdir"])
    with contextlib.suppress(OSError):  # the assignment's data files, read-only
        for name in os.listdir(config["data"]):
            os.symlink(os.path.join(config["data"], name), name)
    channel.send({"k": "start"})
    cells = [c for c in job.get("cells", []) if isinstance(c, dict) and not c.get("trusted")]
    _run_cells(cells, ns, channel, watch, float(limits["part_seconds"]))

    def reap() -> None:
        _kill_others({os.getpid(), zygote}, config["own_uid"])

    reap()
    watch.phase = {}
    server = serve.Server(ns, channel, watch, int(limits["reply_bytes"]))
    channel.send({"k": "ready", "names": server.listing()})
    server.serve(read, reap)
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    channel.send({"k": "done", "cpu": sum(u.ru_utime + u.ru_stime for u in usage)})
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)  # skip atexit handlers and finalizers the learner may have registered


def _drain(fd: int) -> None:
    """Discard whatever a finished child left unread in a pipe."""
    os.set_blocking(fd, False)
    with contextlib.suppress(OSError):
        while os.read(fd, 1 << 16):
            pass
    os.set_blocking(fd, True)


def main() -> None:
    job_dir, channel = sys.argv[1], Channel(int(sys.argv[2]))
    request_fd, control = int(sys.argv[3]), Channel(int(sys.argv[4]))
    read, jobs = serve.reader(request_fd), serve.reader(int(sys.argv[5]))
    with open(os.path.join(job_dir, "job.json")) as f:
        config = json.load(f)
    config["control_fds"] = [int(sys.argv[4]), int(sys.argv[5])]
    _zygote_limits(config["limits"])
    sys.meta_path.insert(0, _ViewFinder(config["course_lib_parent"]))
    signal.signal(signal.SIGALRM, serve.on_alarm)
    os.chdir(config["workdir"])
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    ns.update(get_ipython=lambda: _Shell(ns), display=lambda *objects, **kwargs: None)
    errors = {}
    for cell in config["setup"]:  # trusted source code; only the wall limit applies
        try:
            exec(compile(cell["source"], f"<setup {cell['id']}>", "exec"), ns)
        except BaseException as exc:
            errors[cell["id"]] = error_text(exc)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: no ptrace, no /proc/pid/mem
    watch = _Watch(channel, config["read_roots"], config["write_roots"])
    sys.addaudithook(watch)
    control.send({"k": "zygote", "errors": errors})
    while True:
        job = jobs()
        if not isinstance(job, dict) or job.get("op") != "job":
            break
        pid = os.fork()
        if pid == 0:
            _child(job, config, ns, channel, watch, read)
        _, status, usage = os.wait4(pid, 0)
        _kill_others({os.getpid()}, config["own_uid"])
        _wipe(config["wipe"])
        _drain(request_fd)
        code = os.waitstatus_to_exitcode(status)
        cpu = usage.ru_utime + usage.ru_stime
        control.send(
            {
                "k": "exit",
                "code": code if code >= 0 else None,
                "signal": -code if code < 0 else None,
                "cpu": cpu,
            }
        )
        if not config["reuse"]:
            break
    os._exit(0)


if __name__ == "__main__":
    main()
