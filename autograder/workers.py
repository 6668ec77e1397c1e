"""The executors: grade submissions in parallel; a worker that dies costs only its student.

Local: `jobs` worker processes (spawned, so nothing is inherited), each grading one
submission at a time, so when one dies (the out-of-memory killer, a crash) the grader knows
exactly which submission it was grading: that student gets "error" rows naming the cause,
a fresh worker takes its place, and everyone else is graded. Dask: each submission is a
task; a task that fails twice (e.g. `KilledWorker` after its workers died) gives its student
"error" rows the same way.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait

from autograder.collect import Submission
from autograder.context import Options
from autograder.grade import StudentResult, failed
from autograder.spec import Bundle, prepare

Grade = Callable[[Submission, Bundle, Options], StudentResult]


def _serve(conn, grade: Grade, bundle: Bundle) -> None:
    """A worker: grade what comes on `conn` until None."""
    while (job := conn.recv()) is not None:
        sub, options = job
        conn.send(grade(sub, bundle, options))


class _Worker:
    def __init__(self, ctx, grade: Grade, bundle: Bundle):
        self.conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(theirs, grade, bundle), daemon=True)
        self.process.start()
        theirs.close()
        self.sub: Submission | None = None


class LocalWorkers:
    """Up to `jobs` worker processes, kept from one `run` to the next (their sandboxes too)."""

    def __init__(self, grade: Grade, bundle: Bundle, jobs: int):
        self.grade, self.bundle, self.jobs = grade, bundle, jobs
        self.ctx = multiprocessing.get_context("spawn")
        self.workers: list[_Worker] = []

    def __enter__(self) -> LocalWorkers:
        return self

    def __exit__(self, *exc) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in self.workers:
            w.process.join(timeout=10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()

    def run(self, subs: list[Submission], options: Options) -> Iterator[StudentResult]:
        """Results in the order they finish; one per submission, whatever happens to workers."""
        pending = deque(subs)
        while len(self.workers) < min(self.jobs, len(subs)):
            self.workers.append(_Worker(self.ctx, self.grade, self.bundle))
        for w in self.workers:
            w.sub = pending.popleft() if pending else None
            if w.sub is not None:
                w.conn.send((w.sub, options))
        while any(w.sub is not None for w in self.workers):
            busy = [w for w in self.workers if w.sub is not None]
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for i, w in enumerate(self.workers):
                if w.sub is None or not (w.conn in ready or w.process.sentinel in ready):
                    continue
                result = _receive(w)
                if result is None:  # the worker died: its student alone pays, with the cause
                    result = failed(w.sub, prepare(self.bundle), _death(w.process))
                    w.conn.close()
                    self.workers[i] = w = _Worker(self.ctx, self.grade, self.bundle)
                w.sub = pending.popleft() if pending else None
                if w.sub is not None:
                    w.conn.send((w.sub, options))
                yield result


def _receive(w: _Worker) -> StudentResult | None:
    try:
        if w.conn.poll():
            return w.conn.recv()
    except (EOFError, OSError):
        return None
    w.process.join(timeout=5)
    return None if not w.process.is_alive() else _receive(w)


def _death(process) -> str:
    """Why a worker stopped, for the student's rows and the log."""
    process.join(timeout=5)
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the out-of-memory killer?)" if -code == signal.SIGKILL else ""
        return f"the grading worker was killed by {name}{hint} while grading this notebook"
    return f"the grading worker exited (code {code}) while grading this notebook"


def run_dask(client, grade: Grade, subs: list[Submission], bundle: Bundle, options: Options):
    """The same on Dask: each task carries the bundle (about 50 KB; data scattered to a
    worker would die with it); failed tasks give error rows.

    A worker holds a queued task besides the running one, so a worker that dies can fail a
    task it never started. Failed tasks are tried again once all others are done, one at a
    time, so the second time each is alone to blame.
    """
    from dask.distributed import as_completed

    futures = {client.submit(grade, s, bundle, options, pure=False): s for s in subs}
    again: list[Submission] = []
    for future in as_completed(futures):
        try:
            yield future.result()
        except Exception:
            again.append(futures[future])
    for sub in again:
        try:
            yield client.submit(grade, sub, bundle, options, pure=False).result()
        except Exception as exc:
            reason = f"the grading worker failed on this notebook ({type(exc).__name__}: {exc})"
            yield failed(sub, prepare(bundle), reason[:500])
