"""The sandbox seen from the grader: framed messages in, requests out, hard limits.

A `Sandbox` runs the zygote (autograder.harness); a `Session` is one submission's child of
it. Messages (JSON, 4-byte big-endian length prefix) come on the result pipe (children) and
the control pipe (the zygote only); requests go on the request pipe (children) and the job
pipe (the zygote only). Printed output is drained and kept up to `Limits.output_bytes`.
Every wait has a deadline; the sandbox is killed (whole process group, and every process
of its uid in the fallback as root) when a deadline passes, when a child sends more than
`Limits.result_bytes`, or when it breaks the format. Nothing it sends is executed.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from autograder.sandbox import Limits

_FRAME_LIMIT = 512 * 2**20


@dataclass
class RunResult:
    """How one sandbox ended, for reasons and the log."""

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
    """A started zygote sandbox (see Context): data pipes for its children, control pipes."""

    def __init__(self, cmd: list[str], env: dict, limits: Limits, uid: int | None, cwd: str):
        res_r, res_w = os.pipe()
        req_r, req_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        job_r, job_w = os.pipe()
        names = {"{fd}": res_w, "{req}": req_r, "{ctl}": ctl_w, "{job}": job_r}
        cmd = [str(names.get(p, p)) for p in cmd]
        extra = {"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}
        self.limits, self.uid, self.bwrap = limits, uid, cmd[0].endswith("bwrap")
        self.start = time.monotonic()
        self.end = self.start + limits.wall_seconds
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                pass_fds=tuple(names.values()), env=env, cwd=cwd, start_new_session=True,
                **extra,
            )  # fmt: skip
        finally:
            for fd in names.values():
                os.close(fd)
        self.fds = {"res": res_r, "ctl": ctl_r}
        self.writers = {"req": req_w, "job": job_w}
        for fd in self.writers.values():
            os.set_blocking(fd, False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        for key, fd in self.fds.items():
            self.sel.register(fd, selectors.EVENT_READ, key)
        self.buffers = {"res": bytearray(), "ctl": bytearray()}
        self.inbox: dict[str, collections.deque] = {
            "res": collections.deque(),
            "ctl": collections.deque(),
        }
        self.received = 0
        self.info = RunResult()
        self.closed = False
        self.on_close = None  # called once the process is gone (removes the job folder)

    def recv(self, timeout: float | None = None, channel: str = "res") -> dict:
        """The next message on `channel`; Stopped when the sandbox ends or time runs out."""
        deadline = self._deadline(timeout)
        while not self.inbox[channel]:
            self._pump(deadline)
        return self.inbox[channel].popleft()

    def recv_any(self, timeout: float | None = None) -> tuple[str, dict]:
        """The next message from a child ("res") or, if none is waiting, the zygote ("ctl")."""
        deadline = self._deadline(timeout)
        while not (self.inbox["res"] or self.inbox["ctl"]):
            self._pump(deadline)
        if not self.inbox["res"]:  # the child may have written just before it ended
            with contextlib.suppress(Stopped):
                self._pump(time.monotonic() + 0.05)
        channel = "res" if self.inbox["res"] else "ctl"
        return channel, self.inbox[channel].popleft()

    def send(self, message: dict, timeout: float | None = None, channel: str = "req") -> None:
        """Write one message; Stopped if the sandbox is gone or does not read it in time."""
        data = json.dumps(message, separators=(",", ":")).encode()
        pending = memoryview(len(data).to_bytes(4, "big") + data)
        deadline, fd = self._deadline(timeout), self.writers[channel]
        while pending:
            try:
                pending = pending[os.write(fd, pending) :]
            except BlockingIOError:
                self._pump(deadline, writing=fd)
            except OSError:
                raise Stopped("the sandbox stopped reading") from None

    def drain(self) -> None:
        """Forget what a finished child left on the result pipe (its writers are all gone)."""
        with contextlib.suppress(Stopped):
            self._pump(time.monotonic() + 0.05)
        self.buffers["res"].clear()
        self.inbox["res"].clear()

    def _deadline(self, timeout: float | None) -> float:
        now = time.monotonic()
        return min(self.end, now + timeout) if timeout is not None else self.end

    def _pump(self, deadline: float, writing: int | None = None) -> None:
        """Read whatever is available (or wait for a request pipe to drain)."""
        if self.closed or not self.sel.get_map():
            raise Stopped("the sandbox ended")
        left = deadline - time.monotonic()
        if left <= 0:
            self.info.timed_out = deadline >= self.end
            self.info.unresponsive = not self.info.timed_out
            raise Stopped("time limit")
        if writing is not None:
            self.sel.register(writing, selectors.EVENT_WRITE, "write")
        try:
            ready = self.sel.select(timeout=min(left, 1.0))
        finally:
            if writing is not None:
                self.sel.unregister(writing)
        for key, _ in ready:
            if key.data == "write":
                continue
            fd = key.fileobj if isinstance(key.fileobj, int) else key.fileobj.fileno()
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.sel.unregister(key.fileobj)
            elif key.data == "out":
                keep = max(0, self.limits.output_bytes - len(self.info.output))
                self.info.output += chunk[:keep]
                self.info.output_total += len(chunk)
            else:
                self._take(key.data, chunk)
        if "ctl" not in {k.data for k in self.sel.get_map().values()} and not any(
            self.inbox.values()
        ):
            raise Stopped("the sandbox ended")

    def _take(self, channel: str, chunk: bytes) -> None:
        if channel == "res":
            self.received += len(chunk)
            if self.received > self.limits.result_bytes:
                self.info.overflow = True
                raise Stopped("too much data")
        buffer = self.buffers[channel]
        buffer += chunk
        while len(buffer) >= 4:
            size = int.from_bytes(buffer[:4], "big")
            if size > _FRAME_LIMIT:
                self.info.malformed = "a message longer than the limit"
                raise Stopped(self.info.malformed)
            if len(buffer) < 4 + size:
                break
            frame = bytes(buffer[4 : 4 + size])
            del buffer[: 4 + size]
            try:
                message = json.loads(frame)
            except (ValueError, RecursionError) as exc:
                self.info.malformed = f"unreadable message: {type(exc).__name__}"
                raise Stopped(self.info.malformed) from None
            if not isinstance(message, dict):
                self.info.malformed = "a message is not a JSON object"
                raise Stopped(self.info.malformed)
            self.info.messages += 1
            if message.get("k") == "event" and channel == "res":
                if len(self.info.events) < 200:
                    self.info.events.append(message)
            else:
                self.inbox[channel].append(message)

    def close(self, grace: float = 2.0) -> RunResult:
        """Ask the zygote to finish, wait up to `grace` s, kill it, and return how it ended."""
        if self.closed:
            return self.info
        with contextlib.suppress(Stopped):
            self.send({"op": "quit"}, timeout=0.5, channel="job")
        deadline = time.monotonic() + grace
        with contextlib.suppress(Stopped):
            while time.monotonic() < deadline:
                self._pump(deadline)
        self.closed = True
        status, usage = _reap(self.proc, self.uid, grace=0.5)
        for fd in [*self.fds.values(), *self.writers.values()]:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.proc.stdout.close()
        self.sel.close()
        if self.on_close is not None:
            self.on_close()
        code = os.waitstatus_to_exitcode(status)
        info = self.info
        info.wall = time.monotonic() - self.start
        info.cpu = usage.ru_utime + usage.ru_stime
        info.max_rss_mb = usage.ru_maxrss / 1024
        if code < 0:
            info.signal = -code
        elif code > 128 and self.bwrap:  # bwrap reports a killed child as 128 + signal
            info.signal = code - 128
        else:
            info.exit_code = code
        return info


class Session:
    """One submission's process, forked by a zygote; what verify.Learner talks to."""

    def __init__(self, box: Sandbox, cells: list[dict], wall: float, on_kill):
        self.box, self.on_kill, self.started = box, on_kill, time.monotonic()
        box.drain()
        box.end = self.started + wall
        box.info.output, box.info.output_total = b"", 0
        box.info.events, box.info.messages = [], 0
        self.info, self.exit, self.killed = RunResult(), None, None
        self.send({"op": "job", "cells": cells}, channel="job")

    def recv(self, timeout: float | None = None) -> dict:
        if self.exit is not None or self.killed is not None:
            raise Stopped("the submission's process has ended")
        try:
            channel, message = self.box.recv_any(timeout)
        except Stopped:
            self._kill()
            raise
        if channel == "ctl":
            self.exit = message
            raise Stopped("the submission's process ended")
        return message

    def send(self, message: dict, timeout: float | None = None, channel: str = "req") -> None:
        if self.exit is not None or self.killed is not None:
            raise Stopped("the submission's process has ended")
        try:
            self.box.send(message, timeout, channel)
        except Stopped:
            self._kill()
            raise

    def abort(self, why: str) -> None:
        """Kill the sandbox: the child broke the protocol."""
        self.info.malformed = why
        self._kill()

    def _kill(self) -> None:
        if self.killed is None:
            self.killed = self.box.close(grace=0.2)
            self.on_kill()

    def close(self) -> RunResult:
        """End the submission's process and say how it ended (code, signal, limits hit)."""
        with contextlib.suppress(Stopped):
            if self.exit is None and self.killed is None:
                self.send({"op": "done"}, timeout=1.0)
            while self.exit is None and self.killed is None:
                self.recv(timeout=2.0)
        info, box = self.info, self.box.info
        for flag in ("timed_out", "unresponsive", "overflow", "malformed"):
            setattr(info, flag, getattr(info, flag) or getattr(box, flag))
        info.output, info.output_total = box.output, box.output_total
        info.events, info.messages = list(box.events), box.messages
        info.wall = time.monotonic() - self.started
        if self.exit is not None:
            code, sig, cpu = (self.exit.get(k) for k in ("code", "signal", "cpu"))
            info.exit_code = code if type(code) is int else None
            info.signal = sig if type(sig) is int else None
            info.cpu = cpu if type(cpu) is float else 0.0
        elif self.killed is not None:
            info.exit_code, info.signal = None, signal.SIGKILL
            info.cpu, info.max_rss_mb = self.killed.cpu, self.killed.max_rss_mb
        if self.killed is None:
            self.box.end = float("inf")
        return info


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
