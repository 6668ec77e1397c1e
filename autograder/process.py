"""The sandbox seen from the grader: a template process, one session per submission.

A `Sandbox` runs the template (autograder.harness): it set up the assignment and waits for
jobs on a Unix socket. A `Session` is one submission: the grader makes three fresh pipes
(results, requests, printed output), hands their far ends to the template with the job, and
the template forks the submission's own process tree (autograder.isolate). Nothing of one
submission reaches the next: its pipes, budgets and deadlines are its own, and its processes
are gone (the template's exit report, then end-of-file on the result pipe, prove it).

Messages are frames (autograder.frames), each bounded before it is parsed; a result frame
is at most one reply (`Limits.reply_bytes`). Every wait has a deadline; a session that
breaks a limit or the format is killed, never trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

from autograder.frames import FrameError, Frames, encode_frame
from autograder.sandbox import Limits


@dataclass
class RunResult:
    """How one submission's process ended, for reasons and the log."""

    exit_code: int | None = None  # None when killed by a signal
    signal: int | None = None
    timed_out: bool = False  # the wall-time limit
    unresponsive: bool = False  # no answer within a call's time limit (alarm ignored)
    overflow: bool = False  # sent more than Limits.result_bytes
    malformed: str = ""  # the result stream broke the format
    wall: float = 0.0
    cpu: float = 0.0
    max_rss_mb: float = 0.0
    output: bytes = b""
    output_total: int = 0
    messages: int = 0
    events: list[dict] = field(default_factory=list)


class Stopped(Exception):
    """The sandbox ended (or was killed) before answering."""


class Sandbox:
    """A started template (see autograder.context): control pipe in, job socket out."""

    def __init__(self, cmd: list[str], env: dict, limits: Limits, uid: int | None, cwd: str):
        ctl_r, ctl_w = os.pipe()
        self.jobs, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        names = {"{ctl}": ctl_w, "{job}": theirs.fileno()}
        cmd = [str(names.get(p, p)) for p in cmd]
        extra = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
        self.limits, self.uid, self.bwrap = limits, uid, cmd[0].endswith("bwrap")
        self.start = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=tuple(names.values()), env=env, cwd=cwd, start_new_session=True,
                **extra,
            )  # fmt: skip
        finally:
            os.close(ctl_w)
            theirs.close()
        self.ctl = Frames(ctl_r, 2**20)
        self.inbox: list[dict] = []
        self.output = b""
        self.closed = False
        self.on_close = None  # called once the process is gone (removes the job folder)

    def ready(self, timeout: float) -> dict:
        """The template's first report (set-up done, with any set-up errors)."""
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.ctl.fd, selectors.EVENT_READ, "ctl")
        sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        try:
            while not self.inbox:
                self.pump(sel, deadline)
        finally:
            sel.close()
        return self.inbox.pop(0)

    def pump(self, sel: selectors.BaseSelector, deadline: float) -> list[tuple[str, bytes]]:
        """Wait (until `deadline`) and read what is ready; ctl messages go to `inbox`."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        chunks = []
        for key, _ in sel.select(timeout=min(left, 1.0)):
            if key.data == "write":  # the request pipe has room again: the caller writes
                continue
            fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
            chunk = os.read(fd, 1 << 16)
            if key.data == "ctl":
                if not chunk:
                    sel.unregister(key.fileobj)
                    raise Stopped("the template ended")
                try:
                    self.inbox += self.ctl.feed(chunk)
                except FrameError:
                    self.close()
                    raise Stopped("the template broke the protocol") from None
            elif key.data == "out":
                if not chunk:
                    sel.unregister(key.fileobj)
                self.output = (self.output + chunk)[-self.limits.output_bytes :]
            else:
                chunks.append((key.data, chunk))
        return chunks

    def start_job(self, uid: int, fds: list[int]) -> None:
        """Hand the template a job: the submission's uid and the far ends of its pipes."""
        try:
            socket.send_fds(self.jobs, [json.dumps({"op": "job", "uid": uid}).encode()], fds)
        except OSError:
            raise Stopped("the template is gone") from None

    def kill_job(self, timeout: float = 3.0) -> dict | None:
        """Ask the template to kill the running submission; its exit report, or None."""
        with contextlib.suppress(OSError):
            self.jobs.send(b'{"op": "kill"}')
        return self.wait_exit(timeout)

    def wait_exit(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self.ctl.fd, selectors.EVENT_READ, "ctl")
        try:
            while not any(m.get("k") == "exit" for m in self.inbox):
                self.pump(sel, deadline)
        except (Stopped, TimeoutError):
            return None
        finally:
            sel.close()
        return self.take_exit()

    def take_exit(self) -> dict | None:
        for i, m in enumerate(self.inbox):
            if m.get("k") == "exit":
                return self.inbox.pop(i)
        return None

    def close(self, grace: float = 2.0) -> RunResult:
        """Ask the template to finish, wait up to `grace` s, kill it, and say how it ended."""
        info = RunResult(output=self.output)
        if self.closed:
            return info
        self.closed = True
        self.jobs.close()  # end of jobs: the template exits
        status, usage = _reap(self.proc, self.uid, grace)
        with contextlib.suppress(OSError):
            os.close(self.ctl.fd)
        self.proc.stdout.close()
        if self.on_close is not None:
            self.on_close()
        code = os.waitstatus_to_exitcode(status)
        info.wall, info.cpu = time.monotonic() - self.start, usage.ru_utime + usage.ru_stime
        info.max_rss_mb = usage.ru_maxrss / 1024
        if code < 0:
            info.signal = -code
        elif code > 128 and self.bwrap:  # bwrap reports a killed child as 128 + signal
            info.signal = code - 128
        else:
            info.exit_code = code
        return info


class Session:
    """One submission's process tree, forked by the template; what verify.Learner talks to."""

    def __init__(self, box: Sandbox, cells: list[dict], wall: float, uid: int, owned: bool):
        self.box, self.owned, self.limits = box, owned, box.limits
        self.started = time.monotonic()
        self.end = self.started + wall
        self.info, self.exit, self.killed = RunResult(), None, False
        res_r, res_w = os.pipe()
        req_r, self.req = os.pipe()
        out_r, out_w = os.pipe()
        try:
            box.start_job(uid, [res_w, req_r, out_w])
        finally:
            for fd in (res_w, req_r, out_w):
                os.close(fd)
        os.set_blocking(self.req, False)
        self.res = Frames(res_r, self.limits.reply_bytes + 2**20)
        self.out = out_r
        self.sel = selectors.DefaultSelector()
        self.sel.register(res_r, selectors.EVENT_READ, "res")
        self.sel.register(out_r, selectors.EVENT_READ, "print")
        self.sel.register(box.ctl.fd, selectors.EVENT_READ, "ctl")
        self.inbox: list[dict] = []
        self.open = {"res", "print"}  # pipes not yet at their end
        self.send({"op": "job", "cells": cells})

    def recv(self, timeout: float | None = None) -> dict:
        """The next message; Stopped when the process ended, broke a limit or time ran out."""
        deadline = self._deadline(timeout)
        while not self.inbox:
            if self.exit is not None or self.killed:
                raise Stopped("the submission's process has ended")
            self._pump(deadline)
        return self.inbox.pop(0)

    def send(self, message: dict, timeout: float | None = None) -> None:
        """Write one request; Stopped if the process is gone or does not read it in time."""
        if self.exit is not None or self.killed:
            raise Stopped("the submission's process has ended")
        pending, deadline = memoryview(encode_frame(message)), self._deadline(timeout)
        while pending:
            try:
                pending = pending[os.write(self.req, pending) :]
            except BlockingIOError:
                self._pump(deadline, writing=True)
            except OSError:
                self._kill()
                raise Stopped("the submission's process stopped reading") from None

    def abort(self, why: str) -> None:
        """Kill the submission's processes: it broke the protocol."""
        self.info.malformed = self.info.malformed or why
        self._kill()

    def close(self) -> RunResult:
        """End the submission's processes and say how they ended (code, signal, limits hit)."""
        with contextlib.suppress(Stopped):
            if self.exit is None and not self.killed:
                self.send({"op": "done"}, timeout=1.0)
            while self.exit is None and not self.killed:
                self.inbox.clear()
                self._pump(self._deadline(2.0))
        self._drain()
        info = self.info
        info.wall = time.monotonic() - self.started
        if self.exit is not None:
            code, sig, cpu = (self.exit.get(k) for k in ("code", "signal", "cpu"))
            info.exit_code = code if type(code) is int else None
            info.signal = sig if type(sig) is int else None
            info.cpu = cpu if type(cpu) is float else 0.0
            rss = self.exit.get("rss")
            info.max_rss_mb = rss / 1024 if type(rss) is int else 0.0
        for fd in (self.res.fd, self.out, self.req):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.sel.close()
        if self.owned:
            self.box.close(grace=0.5)
        return info

    def _deadline(self, timeout: float | None) -> float:
        now = time.monotonic()
        return min(self.end, now + timeout) if timeout is not None else self.end

    def _pump(self, deadline: float, writing: bool = False) -> None:
        if time.monotonic() >= deadline:
            self.info.timed_out = deadline >= self.end
            self.info.unresponsive = not self.info.timed_out
            self._kill()
            raise Stopped("time limit")
        if writing:
            self.sel.register(self.req, selectors.EVENT_WRITE, "write")
        try:
            chunks = self.box.pump(self.sel, deadline)
        except TimeoutError:
            chunks = []
        except Stopped:
            self._kill()
            raise
        finally:
            if writing:
                self.sel.unregister(self.req)
        for channel, chunk in chunks:
            if channel == "res" and chunk:
                self._take(chunk)
            else:
                self._read(channel, chunk)
        exit_ = self.box.take_exit()
        if exit_ is not None:
            self.exit = exit_
            self._drain()

    def _take(self, chunk: bytes) -> None:
        if self.res.received + len(chunk) > self.limits.result_bytes:
            self.info.overflow = True
            self._kill()
            raise Stopped("too much data")
        try:
            messages = self.res.feed(chunk)
        except FrameError as exc:
            self.info.malformed = str(exc)
            self._kill()
            raise Stopped(str(exc)) from None
        for message in messages:
            self.info.messages += 1
            if message.get("k") == "event":
                if len(self.info.events) < 200:
                    self.info.events.append(message)
            else:
                self.inbox.append(message)

    def _drain(self) -> None:
        """Read the result and output pipes to their end (every writer gone), at most 0.5 s."""
        deadline = time.monotonic() + 0.5
        while self.open and time.monotonic() < deadline:
            ready = self.sel.select(timeout=max(0.0, deadline - time.monotonic()))
            for key, _ in ready:
                if key.data != "ctl":
                    self._read(key.data, os.read(key.fd, 1 << 16))
            if not ready:
                break

    def _read(self, channel: str, chunk: bytes) -> None:
        if not chunk:
            self.open.discard(channel)
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(self.res.fd if channel == "res" else self.out)
        if channel == "res":
            with contextlib.suppress(Stopped):
                self._take(chunk)
        else:
            keep = max(0, self.limits.output_bytes - len(self.info.output))
            self.info.output += chunk[:keep]
            self.info.output_total += len(chunk)

    def _kill(self) -> None:
        if self.killed or self.exit is not None:
            return
        self.killed = True
        report = None if self.box.closed else self.box.kill_job()
        if report is None:  # the template did not answer: it goes too
            ended = self.box.close(grace=0.2)
            self.info.cpu, self.info.max_rss_mb = ended.cpu, ended.max_rss_mb
        else:
            cpu = report.get("cpu")
            self.info.cpu = cpu if type(cpu) is float else 0.0
        self.info.exit_code, self.info.signal = None, signal.SIGKILL


def _reap(proc: subprocess.Popen, uid: int | None, grace: float):
    """Wait up to `grace` seconds for the sandbox to exit, then kill it; (status, rusage)."""
    deadline = time.monotonic() + grace
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    _kill(proc, uid)
    if not pid:
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return status, usage


def _kill(proc: subprocess.Popen, uid: int | None) -> None:
    """Kill the sandbox and everything it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if uid is not None:  # fallback as root: the fresh uid owns exactly this sandbox's processes
        subprocess.run(
            [sys.executable, "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
            user=uid, group=uid, extra_groups=[], stdin=subprocess.DEVNULL,
            capture_output=True, check=False,
        )  # fmt: skip
