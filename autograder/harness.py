"""Runs INSIDE the sandbox: a template that forks one fresh process tree per submission.

`python harness.py <job dir> <control fd> <job socket fd>`. The job dir (read-only) holds
`job.json`: the assignment's set-up cells (trusted source code), limits, and the paths the
sandbox is expected to touch. The template applies the limits, runs the set-up cells once
(imports included), makes itself non-dumpable and reports "ready" on the control pipe. It
never runs learner code. Each job arrives on the socket with the submission's uid and its
own three pipes (results, requests, printed output); the template forks a child that, with
bubblewrap as root, enters its own namespaces, tmpfs, uid and system-call filter
(autograder.isolate), reads the learner's cells from its request pipe, runs them, lists the
learner's names and answers requests (autograder.serve) until told it is done. The template
reports how the child ended (or kills it when asked) on the control pipe, which no child
keeps open, so a child cannot forge how it ended nor reach the next submission.

Nothing a child does is trusted by the grader. This file is copied into the sandbox with
serve.py, wire.py and isolate.py; it imports only the standard library, NumPy and those.
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
import select
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import isolate  # noqa: E402
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


def _zygote_limits(limits: dict) -> None:
    """Limits on the whole sandbox: files, core dumps, processes (and threads)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("isolate"):  # each submission's own uid gets its own limit (isolate.enter)
        return
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
                if fields["Uid"].split()[0] == uid and _alive(name, fields["State"]):
                    found.append(int(name))
    return found


def _alive(pid: str, state: str) -> bool:
    """Not a zombie, or a zombie leader whose other threads still run."""
    if not state.strip().startswith("Z"):
        return True
    with contextlib.suppress(OSError):
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    return False


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


def _child(config: dict, ns: dict, fds: list[int], uid: int, watch: _Watch) -> None:
    """One submission: its own namespaces, then its cells, then requests until "done"."""
    limits = config["limits"]
    res, req, out = fds
    if config["isolate"]:
        keep = tuple(str(p) for p in config.get("keep", []) if isinstance(p, str))
        isolate.enter(uid, int(limits["file_bytes"]), int(limits["processes"]), keep)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    channel, read = Channel(res), serve.reader(req)
    watch.channel = channel
    _child_limits(limits)
    os.makedirs(config["workdir"], exist_ok=True)
    os.chdir(config["workdir"])
    with contextlib.suppress(OSError):  # the assignment's data files, read-only
        for name in os.listdir(config["data"]):
            os.symlink(os.path.join(config["data"], name), name)
    job = read()
    channel.send({"k": "start"})
    cells = job.get("cells", []) if isinstance(job, dict) else []
    cells = [c for c in cells if isinstance(c, dict) and not c.get("trusted")]
    _run_cells(cells, ns, channel, watch, float(limits["part_seconds"]))

    keep = {os.getpid(), os.getppid(), 1}  # the template; the namespace's init (bwrap's or ours)

    def reap() -> None:
        _kill_others(keep, config["own_uid"])

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


def _next_job(jobs: socket.socket) -> tuple[dict, list[int]]:
    """The next message on the job socket and the pipes that came with it ({} at the end)."""
    try:
        data, fds, _, _ = socket.recv_fds(jobs, 4096, 3)
        message = json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}, []
    return (message if isinstance(message, dict) else {}), fds


def _await(pid: int, jobs: socket.socket):
    """Wait for the child; kill it when the grader asks (or is gone). (status, rusage)."""
    pidfd = os.pidfd_open(pid)
    try:
        while pidfd not in select.select([pidfd, jobs], [], [])[0]:
            message, fds = _next_job(jobs)
            for fd in fds:
                os.close(fd)
            if message.get("op") in ("kill", None):
                os.kill(pid, signal.SIGKILL)
            if not message:
                jobs.close()  # the grader is gone: nothing more to read
                break
    finally:
        os.close(pidfd)
    _, status, usage = os.wait4(pid, 0)
    return status, usage


def main() -> None:
    job_dir, control = sys.argv[1], Channel(int(sys.argv[2]))
    jobs = socket.socket(fileno=int(sys.argv[3]))
    with open(os.path.join(job_dir, "job.json")) as f:
        config = json.load(f)
    _zygote_limits({**config["limits"], "isolate": config["isolate"]})
    sys.meta_path.insert(0, _ViewFinder(config["course_lib_parent"]))
    signal.signal(signal.SIGALRM, serve.on_alarm)
    os.chdir("/" if config["isolate"] else config["workdir"])
    ns: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    ns.update(get_ipython=lambda: _Shell(ns), display=lambda *objects, **kwargs: None)
    errors = {}
    for cell in config["setup"]:  # trusted source code; only the wall limit applies
        try:
            exec(compile(cell["source"], f"<setup {cell['id']}>", "exec"), ns)
        except BaseException as exc:
            errors[cell["id"]] = error_text(exc)
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: no ptrace, no /proc/pid/mem
    watch = _Watch(None, config["read_roots"], config["write_roots"])
    sys.addaudithook(watch)
    control.send({"k": "zygote", "errors": errors})
    while True:
        job, fds = _next_job(jobs)
        if job.get("op") != "job" or len(fds) != 3:
            break
        uid = job.get("uid") if type(job.get("uid")) is int else -1
        pid = os.fork()
        if pid == 0:
            try:
                jobs.close()
                os.close(control.fd)
                _child(config, ns, fds, uid, watch)
            finally:
                os._exit(1)  # never back into the template's loop
        for fd in fds:
            os.close(fd)
        status, usage = _await(pid, jobs)
        code = os.waitstatus_to_exitcode(status)
        control.send(
            {
                "k": "exit",
                "code": code if code >= 0 else None,
                "signal": -code if code < 0 else None,
                "cpu": usage.ru_utime + usage.ru_stime,
                "rss": usage.ru_maxrss,
            }
        )
        if not config["reuse"] or jobs.fileno() < 0:
            break
    os._exit(0)


if __name__ == "__main__":
    main()
