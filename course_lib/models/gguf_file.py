"""Read a GGUF file (llama.cpp's model format): metadata and the raw bytes of every tensor.

Layout (GGUF version 2 and 3, little-endian; ggml's `docs/gguf.md`):

    magic "GGUF", uint32 version, uint64 tensor_count, uint64 kv_count
    kv_count times:     key (string), uint32 value type, value
    tensor_count times: name (string), uint32 n_dims, uint64 dims[n_dims] (fastest first),
                        uint32 GGML type, uint64 offset (from the start of the data section)
    padding to `general.alignment` (32 by default), then the tensor data

A string is a uint64 length and UTF-8 bytes; an array a uint32 element type, a uint64
count and the elements. The file is memory-mapped: tensors are views, read when used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from course_lib.models.gguf_quants import GGML_TYPES, dequantize

GGUF_MAGIC = b"GGUF"
# GGUF value type -> numpy dtype of the scalar (8 = string, 9 = array)
_SCALARS = {
    0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32,
    6: np.float32, 7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64,
}  # fmt: skip


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One tensor: GGML type id, shape in PyTorch order (slowest first) and its raw bytes."""

    name: str
    type_id: int
    shape: tuple[int, ...]
    data: np.ndarray  # uint8 view into the memory-mapped file

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.type_id, (f"type {self.type_id}",))[0]

    def dequantize(self) -> torch.Tensor:
        """The float32 tensor the stored blocks stand for (`gguf_quants.dequantize`)."""
        return dequantize(torch.from_numpy(self.data), self.type_id, self.shape)


class _Cursor:
    """Sequential little-endian reads from a buffer."""

    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        n = self.unpack("Q")
        text = bytes(self.buf[self.pos : self.pos + n]).decode("utf-8")
        self.pos += n
        return text

    def strings(self, count: int) -> list[str]:
        """`count` consecutive strings (a vocabulary: tens of thousands, so a tight loop)."""
        buf, pos, out = self.buf, self.pos, []
        for _ in range(count):
            n = int.from_bytes(buf[pos : pos + 8], "little")
            out.append(str(buf[pos + 8 : pos + 8 + n], "utf-8"))
            pos += 8 + n
        self.pos = pos
        return out

    def value(self, vtype: int) -> Any:
        if vtype == 8:
            return self.string()
        if vtype == 9:
            etype, count = self.unpack("IQ")
            if etype in _SCALARS:  # numbers: one vectorized read
                dtype = np.dtype(_SCALARS[etype]).newbyteorder("<")
                arr = np.frombuffer(self.buf, dtype, count, self.pos)
                self.pos += arr.nbytes
                return arr.tolist()
            if etype == 8:
                return self.strings(count)
            return [self.value(etype) for _ in range(count)]
        if vtype not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {vtype} at byte {self.pos}")
        dtype = np.dtype(_SCALARS[vtype]).newbyteorder("<")
        value = np.frombuffer(self.buf, dtype, 1, self.pos)[0].item()
        self.pos += dtype.itemsize
        return value


class GGUFFile:
    """A parsed GGUF file: `metadata` (key -> value) and `tensors` (name -> GGUFTensorInfo)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no GGUF file at {self.path}")
        # copy-on-write map: writable views for torch.from_numpy, the file is never modified
        self._map = np.memmap(self.path, dtype=np.uint8, mode="c")
        cur = _Cursor(memoryview(self._map))
        if bytes(self._map[:4]) != GGUF_MAGIC:
            raise ValueError(f"{self.path} is not a GGUF file (magic {bytes(self._map[:4])!r})")
        cur.pos = 4
        self.version, n_tensors, n_kv = cur.unpack("IQQ")
        if self.version not in (2, 3):
            raise NotImplementedError(f"GGUF version {self.version}; course_lib reads 2 and 3")
        self.metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            self.metadata[key] = cur.value(cur.unpack("I"))
        infos = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("I")
            dims = cur.unpack("Q" * n_dims) if n_dims else ()
            dims = (dims,) if isinstance(dims, int) else tuple(dims)
            type_id, offset = cur.unpack("IQ")
            infos.append((name, dims, type_id, offset))
        alignment = int(self.metadata.get("general.alignment", 32))
        start = -(-cur.pos // alignment) * alignment
        self.tensors: dict[str, GGUFTensorInfo] = {}
        for name, dims, type_id, offset in infos:
            self.tensors[name] = self._tensor(name, dims, type_id, start + offset)

    def _tensor(self, name: str, dims: tuple[int, ...], type_id: int, at: int) -> GGUFTensorInfo:
        shape = tuple(reversed(dims))  # GGML lists the fastest dimension first
        block, nbytes = GGML_TYPES.get(type_id, ("?", 1, 0))[1:]
        count = int(np.prod(shape)) if shape else 1
        size = count // block * nbytes
        data = self._map[at : at + size]
        return GGUFTensorInfo(name, type_id, shape, data)

    def __repr__(self) -> str:
        return f"GGUFFile({self.path.name!r}, version {self.version}, {len(self.tensors)} tensors)"
