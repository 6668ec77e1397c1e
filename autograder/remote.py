"""The learner's functions, classes and objects as the trusted test cells see them: proxies.

Calling a proxy sends the arguments (as data) to the learner's sandbox and returns the
output (data, or a `RemoteRef` to an object that stays in the sandbox). A learner exception
comes back as an exception of the same built-in type carrying the learner's message, so
`check_function` reports it exactly as in the notebook; a time limit or a dead sandbox
raises a BaseException that aborts the test cell. No learner code ever runs here.
"""

from __future__ import annotations

import builtins
import re
from typing import Any, Protocol


class LearnerTimeout(BaseException):
    """The learner's code ran out of time on a call (aborts the test cell)."""


class LearnerGone(BaseException):
    """The learner's sandbox stopped (crash, limit, exit) before answering."""


class LearnerError(Exception):
    """Mixed into the exception a learner's call raised; `frames` are the learner's lines."""

    frames: str = ""


class Channel(Protocol):
    generation: int

    def request(self, op: str, **fields: Any) -> Any: ...


def learner_exception(type_name: str, text: str, builtin: bool) -> Exception:
    """An exception like the learner's: same built-in type when it is one, same message."""
    lines = text.splitlines() or [type_name]
    message = lines[0].split(": ", 1)[1] if ": " in lines[0] else ""
    name = re.sub(r"\W", "_", type_name)[:80] or "Exception"
    base = getattr(builtins, name, None) if builtin else None
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    try:
        exc = type(name, (LearnerError, base), {})(message)
    except TypeError:  # built-ins whose constructor wants more arguments
        exc = type(name, (LearnerError, Exception), {})(message)
    exc.frames = "\n".join(lines[1:])
    return exc


class LearnerProxy:
    """A function or class the learner defined at the top level, called by name."""

    def __init__(self, channel: Channel, name: str, kind: str):
        self._channel, self.__name__, self.kind = channel, name, kind
        self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        return self._channel.request(
            "call", target={"t": "name", "v": self.__name__}, args=args, kwargs=kwargs
        )

    def __repr__(self) -> str:
        return f"<your {self.kind} {self.__name__}>"

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self  # a name, like a function: copies are the same function


class RemoteRef:
    """An object that lives in the learner's sandbox (e.g. an instance of the learner's class)."""

    def __init__(self, channel: Channel, ref: int, type_name: str):
        self._channel, self._ref, self._type = channel, ref, type_name
        self._generation = channel.generation

    def _target(self) -> dict:
        if self._generation != self._channel.generation:
            raise LearnerGone(f"this {self._type} belonged to a sandbox that has stopped")
        return {"t": "ref", "id": self._ref}

    def __call__(self, *args, **kwargs):
        return self._channel.request("call", target=self._target(), args=args, kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._channel.request("getattr", target=self._target(), name=name)

    def __getitem__(self, key):
        return self._channel.request("getitem", target=self._target(), key=key)

    def __len__(self) -> int:
        n = self._channel.request("len", target=self._target())
        if type(n) is not int or n < 0:
            raise TypeError(f"len() of your {self._type} is not a count")
        return n

    def __iter__(self):
        items = self._channel.request("list", target=self._target())
        if not isinstance(items, list):
            raise TypeError(f"your {self._type} cannot be iterated")
        return iter(items)

    def __repr__(self) -> str:
        return f"<your {self._type} object>"

    def __copy__(self):
        return self._channel.request("copy", target=self._target())

    def __deepcopy__(self, memo):
        return self._channel.request("deepcopy", target=self._target())
