"""Peak memory of the tensors a block of PyTorch code creates, seen by a dispatch mode.

Used by chapter 10 to show that FlashAttention never builds the T x T score matrix, and by
ps10's tests to check that a learner's tiled attention does not either. Every aten
operation that runs inside the block passes through `__torch_dispatch__`; each new storage
is counted when created and released when its tensor is garbage-collected.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class PeakMemory(TorchDispatchMode):
    """Peak bytes of tensors created inside the `with` block (inputs excluded): `.peak`."""

    def __init__(self) -> None:
        super().__init__()
        self.live, self.peak, self.storages = 0, 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # Views and in-place results share an input's storage: nothing new was allocated.
        shared = {_storage(a) for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)}
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if not isinstance(t, torch.Tensor):
                continue
            key = _storage(t)
            if key not in shared and key not in self.storages:
                size = t.untyped_storage().nbytes()
                self.storages.add(key)
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(t, self._free, key, size)
        return out

    def _free(self, key: int, size: int) -> None:
        self.storages.discard(key)
        self.live -= size


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def peak_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Run `fn(*args, **kwargs)` without autograd; return its result and the peak bytes of
    the tensors it created (its inputs not counted)."""
    with torch.no_grad(), PeakMemory() as pm:
        result = fn(*args, **kwargs)
    return result, pm.peak
