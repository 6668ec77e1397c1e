"""Runs INSIDE the sandbox: messages to the grader, and the server answering its requests.

Requests (call this learner function with these arguments, read this attribute, ...) come
one at a time as length-prefixed JSON; each answer is data made by `wire.encode`, and
objects that are not data stay here and cross as handles. Learner code shares this process
and may change anything in it: it can only make its own answers wrong or missing.
"""

from __future__ import annotations

import builtins
import copy
import inspect
import itertools
import json
import os
import signal
import traceback

import wire


class Timeout(BaseException):
    """Raised by SIGALRM when a cell or a request runs out of time."""


class OutputNotSent(Exception):
    """The function returned, but its output is not data that can cross the boundary."""


class Channel:
    """Length-prefixed JSON messages on the result fd (4-byte big-endian length)."""

    def __init__(self, fd: int):
        self.fd, self.write, self.pid = fd, os.write, os.getpid()

    def send(self, message: dict) -> None:
        if os.getpid() != self.pid:  # a process the learner forked came back into the harness
            os._exit(0)
        data = json.dumps(message, separators=(",", ":")).encode()
        data = len(data).to_bytes(4, "big") + data
        while data:
            data = data[self.write(self.fd, data) :]


def on_alarm(signum, frame):
    raise Timeout()


def run_limited(seconds: float | None, fn):
    """`fn()`, interrupted by Timeout after `seconds` (None: no limit)."""
    if seconds is None:
        return fn()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def error_text(exc: BaseException) -> str:
    """`Type: message` plus the learner's own frames (cells only, never the harness)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    frames = [
        f"  {f.filename.strip('<>')}, line {f.lineno}, in {f.name}: {(f.line or '').strip()}"
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith("<cell ")
    ]
    return "\n".join([text[:2000], *frames[-3:]])


class Server(wire.Refs):
    """Answers the grader's requests: call a learner function, read an attribute, and so on.

    Objects that are not data stay here and cross as handles (`wire.Refs`).
    """

    def __init__(self, ns: dict, channel: Channel, watch: object, reply_bytes: int):
        self.ns, self.channel, self.watch, self.reply_bytes = ns, channel, watch, reply_bytes
        self.objects: dict[int, object] = {}

    def handle(self, x):
        self.objects[len(self.objects) + 1] = x
        return {"t": "ref", "id": len(self.objects), "type": type(x).__name__[:80]}

    def resolve(self, node):
        if node.get("t") == "name" and isinstance(node.get("v"), str) and node["v"] in self.ns:
            return self.ns[node["v"]]
        if node.get("t") == "ref" and node.get("id") in self.objects:
            return self.objects[node["id"]]
        return wire.Unsupported("missing object")

    def listing(self) -> dict:
        """The learner's top-level names: functions and classes by kind, values as data."""
        names = {}
        for name, value in list(self.ns.items()):
            if name.startswith("__") or name in ("get_ipython", "display"):
                continue
            if isinstance(value, type(os)):
                continue
            if isinstance(value, type) or inspect.isfunction(value) or inspect.isbuiltin(value):
                names[name] = {"kind": "class" if isinstance(value, type) else "function"}
                continue
            try:
                names[name] = {"kind": "value", "v": self._encode(value)}
            except BaseException as exc:  # e.g. a huge value; it stays here
                names[name] = {"kind": "error", "error": error_text(exc)}
        return names

    def _encode(self, value):
        if inspect.isgenerator(value) or isinstance(value, (map, filter, zip, range)):
            value = list(itertools.islice(value, wire.MAX_ITEMS))
        try:
            return wire.encode(value, wire.Budget(self.reply_bytes), self)
        except (wire.WireError, ValueError, TypeError, RecursionError) as exc:
            raise OutputNotSent(f"the output cannot be sent back: {exc}") from None

    def serve(self, read, reap) -> None:
        while True:
            request = read()
            if not isinstance(request, dict) or request.get("op") == "done":
                return
            reply = self._answer(request)
            reap()
            self.channel.send({"k": "reply", "n": request.get("n"), **reply})

    def _answer(self, request: dict) -> dict:
        op = request.get("op")
        if op == "phase":
            self.watch.phase = {"part": str(request.get("part"))[:200]}
            return {"ok": {"t": "none"}}
        try:
            action = self._action(op, request)
            value = run_limited(float(request.get("timeout", 10.0)), action)
            return {"ok": self._encode(value)}
        except Timeout:
            return {"timeout": True}
        except BaseException as exc:
            builtin = isinstance(getattr(builtins, type(exc).__name__, None), type)
            return {"error": error_text(exc), "type": type(exc).__name__[:80], "builtin": builtin}

    def _action(self, op, request: dict):
        target = self.resolve(request.get("target") or {})
        budget = wire.Budget(2**34)
        if op == "call":
            args = wire.decode(request.get("args"), budget, self)
            kwargs = wire.decode(request.get("kwargs"), budget, self)
            return lambda: target(*args, **kwargs)
        if op == "getattr":
            name = str(request.get("name"))
            if name.startswith("__"):
                raise AttributeError(f"{name} cannot be read from the grader")
            return lambda: getattr(target, name)
        if op == "getitem":
            key = wire.decode(request.get("key"), budget, self)
            return lambda: target[key]
        if op == "len":
            return lambda: len(target)
        if op in ("copy", "deepcopy"):
            return lambda: getattr(copy, op)(target)
        if op == "list":
            return lambda: list(itertools.islice(iter(target), wire.MAX_ITEMS))
        raise ValueError(f"unknown request {str(op)[:40]!r}")


def reader(fd: int):
    """Read length-prefixed JSON requests from `fd`; None at the end."""

    def read_exactly(n: int) -> bytes | None:
        chunks, got = [], 0  # joined once: `bytes +=` per pipe read is quadratic in n
        while got < n:
            chunk = os.read(fd, n - got)
            if not chunk:
                return None
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def read():
        head = read_exactly(4)
        body = read_exactly(int.from_bytes(head, "big")) if head else None
        return json.loads(body) if body else None

    return read
