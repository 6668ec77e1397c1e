"""Run the assignment's own test cells in the grader's process against the learner's sandbox.

The SOURCE notebook's set-up cells and test cells (hidden tests included) run here, in a
fresh namespace per submission, with the real course_lib checks and references. Every
learner name they use is a proxy (autograder.remote): calling it asks the sandbox, which ran
the learner's cells, to call the learner's function on those arguments and send back data.
So `check_function(dot, reference.dot, cases)` runs exactly as in the notebook, except that
nothing the learner wrote can touch the check, the reference or the expected values. Only
the names the tests grade cross over (`TestCell.names`): a learner's top-level `max`, `int`
or `print` never replaces a builtin or a name of the test cells.

A sandbox that dies is restarted for the next test cell (cells from the one that killed it
on are dropped, as in a dead kernel); all sandboxes of a submission share one wall-time
limit, and the learner's calls in one test cell share `Limits.part_seconds` (the time spent
waiting for the sandbox only: the grader's own work on references and checks is not counted,
so a loaded machine does not fail honest parts).
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from autograder import wire
from autograder.misconception import diagnose
from autograder.process import RunResult, Session, Stopped
from autograder.remote import (
    LearnerGone,
    LearnerProxy,
    LearnerTimeout,
    RemoteRef,
    learner_exception,
)

_GRACE = 5.0  # seconds beyond the sandbox's own alarm before the grader kills it


@dataclass
class TestRun:
    """What happened in one test cell: the exception it ended with (None: it passed)."""

    __test__ = False  # not a pytest test class

    grade_id: str
    error: BaseException | None
    tb: list[traceback.FrameSummary] = field(default_factory=list)
    died: str = ""  # why the sandbox stopped, when it did
    misconception: str = ""  # the known mistake the failed case's output matches, if any


class Learner(wire.Refs):
    """The learner's side: a sandbox started on demand and restarted after it dies."""

    def __init__(self, start, script: list[dict], limits, death):
        self.start_box, self.script, self.limits, self.death = start, list(script), limits, death
        self.end = time.monotonic() + limits.wall_seconds
        self.box: Session | None = None
        self.generation, self.n = 0, 0
        self.part_left = float("inf")  # seconds the learner's code may still take in this part
        self.listing: dict = {}
        self.cell_errors: dict[str, str] = {}
        self.stops: list[str] = []
        self.runs: list[RunResult] = []
        self.last_death = ""

    # ------------------------------------------------------------------ lifecycle
    def ensure(self) -> None:
        """A running sandbox whose cells have run (restarting after a death)."""
        while self.box is None:
            left = self.end - time.monotonic()
            if left <= 0:
                raise LearnerGone(
                    f"the time limit of {self.limits.wall_seconds:g} s for the whole notebook was reached"
                )
            box, running, errors = self.start_box(self.script, left), None, {}
            try:
                while True:
                    m = box.recv()
                    kind = m.get("k")
                    if kind == "cell" and isinstance(m.get("id"), str):
                        running = m["id"]
                    elif kind == "cell_done" and isinstance(m.get("id"), str):
                        running = None
                        if isinstance(m.get("error"), str):
                            errors.setdefault(m["id"], m["error"][:4000])
                    elif kind == "ready" and isinstance(m.get("names"), dict):
                        break
            except Stopped:
                died = self._finish(box, running)
                ids = [c["id"] for c in self.script]
                if running in ids:  # like a dead kernel: this cell and the ones after it are gone
                    self.stops.append(f"cell {running} stopped the notebook: {died}")
                    self.script = self.script[: ids.index(running)]
                    continue
                raise LearnerGone(died) from None
            self.box, self.generation = box, self.generation + 1
            self.listing = m["names"]
            self.cell_errors = self.cell_errors or errors

    def _finish(self, box: Session, running: str | None = None, testing: bool = False) -> str:
        info = box.close()
        self.runs.append(info)
        self.last_death = self.death(info, running, testing)
        return self.last_death

    def close(self) -> None:
        if self.box is not None:
            self._finish(self.box)
            self.box = None

    # ------------------------------------------------------------------ requests
    def request(self, op: str, **fields):
        """Send one request to the sandbox and decode its reply (data or handles)."""
        if self.box is None:
            raise LearnerGone(self.last_death or "the sandbox is not running")
        timeout = min(self.part_left, self.end - time.monotonic())
        if timeout <= 0:
            raise LearnerTimeout(self.limits.part_seconds)
        self.n += 1
        body = {
            k: (wire.encode(v, wire.Budget(2**34), self) if k in ("args", "kwargs", "key") else v)
            for k, v in fields.items()
        }
        started = time.monotonic()
        try:
            self.box.send(
                {"op": op, "n": self.n, "timeout": timeout, **body}, timeout=timeout + _GRACE
            )
            reply = self.box.recv(timeout + _GRACE)
            self.part_left -= time.monotonic() - started
            if reply.get("k") != "reply" or reply.get("n") != self.n:
                self.box.abort("a reply that does not answer the request")
                raise Stopped("protocol")
        except Stopped:
            box, self.box = self.box, None
            raise LearnerGone(self._finish(box, testing=True)) from None
        if reply.get("timeout"):
            raise LearnerTimeout(self.limits.part_seconds)
        if isinstance(reply.get("error"), str):
            raise learner_exception(
                str(reply.get("type", "Exception")), reply["error"], reply.get("builtin") is True
            )
        return wire.decode(reply.get("ok"), wire.Budget(self.limits.reply_bytes), self)

    def handle(self, x):
        if isinstance(x, RemoteRef):
            return x._target()
        if isinstance(x, LearnerProxy):
            return {"t": "name", "v": x.__name__}
        return None

    def resolve(self, node):
        if node.get("t") == "ref" and type(node.get("id")) is int:
            return RemoteRef(self, node["id"], str(node.get("type", "object"))[:80])
        return wire.Unsupported("object")

    def proxies(self) -> dict:
        """Grader-side stand-ins for the learner's top-level names."""
        out = {}
        for name, info in self.listing.items():
            kind = info.get("kind") if isinstance(info, dict) else None
            if kind in ("function", "class"):
                out[name] = LearnerProxy(self, name, kind)
            elif kind == "value":
                with contextlib.suppress(wire.WireError, ValueError, TypeError, RecursionError):
                    out[name] = wire.decode(
                        info.get("v"), wire.Budget(self.limits.reply_bytes), self
                    )
        return out


def run_tests(prepared, learner: Learner) -> list[TestRun]:
    """Run the source's set-up and test cells here; one TestRun per test cell, in order."""
    _reset_random_state()
    ns: dict = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for cell in prepared.setup:
            exec(compile(cell.source, f"<setup {cell.grade_id}>", "exec"), ns)
    graded = set().union(*(t.names for t in prepared.tests))  # never builtins, never test names
    proxies = _Proxies(learner, graded)
    results = []
    for test in prepared.tests:
        error, died = None, ""
        try:
            _run_cell(learner, proxies, ns, test)
        except LearnerGone as exc:
            error, died = exc, str(exc)
        except (Exception, LearnerTimeout) as exc:
            error = exc
        finally:
            learner.part_left = float("inf")
        frames = traceback.extract_tb(error.__traceback__) if error is not None else []
        hint = diagnose(error, prepared.spec.misconceptions)
        results.append(TestRun(test.grade_id, error, frames, died, hint))
    _hints_past_examples(prepared, learner, proxies, ns, results)
    learner.close()
    return results


class _Proxies:
    """The learner's graded names in a namespace, fresh after each sandbox (re)start."""

    def __init__(self, learner: Learner, graded: set[str]):
        self.learner, self.graded = learner, graded
        self.generation, self.installed = -1, set()

    def install(self, ns: dict) -> None:
        if self.learner.generation != self.generation:  # (re)started: fresh proxies
            self.generation = self.learner.generation
            for name in self.installed:
                ns.pop(name, None)
            proxies = self.learner.proxies()
            self.installed = {k for k in proxies if k in self.graded}
            self._current = {k: proxies[k] for k in self.installed}
        ns.update(self._current)


def _run_cell(learner: Learner, proxies: _Proxies, ns: dict, test) -> None:
    learner.ensure()
    proxies.install(ns)
    learner.request("phase", part=test.grade_id)
    learner.part_left = learner.limits.part_seconds
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        exec(compile(test.source, f"<test {test.grade_id}>", "exec"), ns)


def _skip_check_value(*args, **kwargs) -> None:
    """check_value for a hint probe: the worked examples already failed; go on."""


def _hints_past_examples(
    prepared, learner: Learner, proxies: _Proxies, ns: dict, results: list[TestRun]
) -> None:
    """Misconception hints for cells whose worked example (`check_value`) failed before their
    random cases (`check_function`), which are what a known-wrong variant is compared on.

    After every verdict is in, the graded sandbox is closed (its record, events and deaths
    included, is complete). Such a cell (one that grades a function a variant is named for)
    then runs once more in a fresh sandbox with check_value a no-op, only to let its
    check_function name the mistake; that sandbox's record is dropped. Nothing here changes a
    score: the probe's outcome is used for the hint alone.
    """
    known = prepared.spec.misconceptions
    todo = [
        (test, run)
        for test, run in zip(prepared.tests, results, strict=True)
        if isinstance(run.error, AssertionError)
        and not run.misconception
        and not hasattr(run.error, "failed_case")
        and any(m.function in test.names for m in known)
    ]
    if not todo:
        return
    learner.close()
    kept = len(learner.runs), list(learner.stops), dict(learner.cell_errors), learner.last_death
    try:
        for test, run in todo:
            try:
                _run_cell(learner, proxies, {**ns, "check_value": _skip_check_value}, test)
            except LearnerGone:
                return
            except (Exception, LearnerTimeout) as exc:
                run.misconception = diagnose(exc, known)
            finally:
                learner.part_left = float("inf")
    finally:
        learner.close()
        del learner.runs[kept[0] :]
        learner.stops[:], learner.cell_errors, learner.last_death = kept[1:]


def _reset_random_state() -> None:
    """The same global random state for every submission (a fresh kernel's, but seeded).

    Also one torch thread: the workers already use every core, one submission each.
    """
    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(1)
