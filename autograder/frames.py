"""Length-prefixed JSON frames from a sandbox, bounded before they are parsed.

A frame is a 4-byte big-endian length and a JSON object. Its size is capped, and the number
of JSON containers and separators is counted before `json.loads` runs, which bounds what
parsing can allocate (a frame of `{},{},…` grows 24-fold in memory otherwise).
"""

from __future__ import annotations

import json

MAX_TOKENS = 2_000_000  # JSON containers and separators in one frame


class FrameError(ValueError):
    """A frame over a bound, or not a JSON object."""


def parse_frame(frame: bytes, max_tokens: int = MAX_TOKENS) -> dict:
    """One message, refused before parsing when it could expand beyond its bounds."""
    tokens = sum(frame.count(c) for c in (b"{", b"[", b",", b":"))
    if tokens > max_tokens:
        raise FrameError(f"a message with more than {max_tokens} JSON elements")
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise FrameError(f"unreadable message: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise FrameError("a message is not a JSON object")
    return message


class Frames:
    """Length-prefixed frames arriving on one pipe, each bounded in size."""

    def __init__(self, fd: int, frame_limit: int):
        self.fd, self.limit, self.buffer, self.received = fd, frame_limit, bytearray(), 0

    def feed(self, chunk: bytes) -> list[dict]:
        self.received += len(chunk)
        self.buffer += chunk
        out = []
        while len(self.buffer) >= 4:
            size = int.from_bytes(self.buffer[:4], "big")
            if size > self.limit:
                raise FrameError("a message longer than the limit")
            if len(self.buffer) < 4 + size:
                break
            frame = bytes(self.buffer[4 : 4 + size])
            del self.buffer[: 4 + size]
            out.append(parse_frame(frame))
        return out


def encode_frame(message: dict) -> bytes:
    """`message` as one frame."""
    data = json.dumps(message, separators=(",", ":")).encode()
    return len(data).to_bytes(4, "big") + data
