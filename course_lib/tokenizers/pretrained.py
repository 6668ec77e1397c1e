"""A real model's tokenizer, read from the metadata of its GGUF file, run by `BPETokenizer`.

GGUF (ggml's single-file model format, github.com/ggml-org/ggml/blob/master/docs/gguf.md)
starts with key-value metadata: `tokenizer.ggml.tokens` (printable token strings, id order),
`tokenizer.ggml.merges` ("Ġ t", rank order), `tokenizer.ggml.token_type` (3 = control, i.e.
special) and `tokenizer.ggml.pre`, llama.cpp's name of the pre-tokenizer. Only the metadata
is read here (a fraction of a second; the `gguf` package's reader also indexes every tensor).

API
- `gguf_vocab(path) -> dict[str, object]`: the `tokenizer.*` metadata
- `gguf_tokenizer(path) -> BPETokenizer`
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np

from course_lib.tokenizers.bpe import GPT2_PATTERN, BPETokenizer

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q"}
_SCALARS |= {11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_CONTROL = 3
# llama.cpp's pre-tokenizers for byte-level BPE vocabularies that this module reproduces:
# name -> split digits one by one first (llama-vocab.cpp: "\p{N}" before GPT-2's regex).
_PRE = {"gpt-2": False, "smollm": True, "starcoder": True, "refact": True}


def _read(buf: memoryview, pos: int, vtype: int) -> tuple[object, int]:
    """One value of GGUF type `vtype` at `pos` -> (value, position after it)."""
    if vtype == _STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return bytes(buf[pos + 8 : pos + 8 + n]).decode("utf-8"), pos + 8 + n
    if vtype == _ARRAY:
        item_type, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        if item_type in _SCALARS:
            dtype = np.dtype(_SCALARS[item_type])
            values = np.frombuffer(buf, dtype, n, pos).tolist()
            return values, pos + n * dtype.itemsize
        out = []
        for _ in range(n):
            value, pos = _read(buf, pos, item_type)
            out.append(value)
        return out, pos
    fmt = _SCALARS[vtype]
    return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)


def gguf_vocab(path: str | Path) -> dict[str, object]:
    """The `tokenizer.*` metadata of a GGUF file (versions 2 and 3)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        buf = memoryview(mm)
        try:
            magic, version, _n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
            if magic != b"GGUF" or version < 2:
                raise ValueError(f"{path} is not a GGUF v2/v3 file (magic {magic!r}, v{version})")
            pos, meta = 24, {}
            for _ in range(n_kv):
                key, pos = _read(buf, pos, _STRING)
                (vtype,) = struct.unpack_from("<I", buf, pos)
                value, pos = _read(buf, pos + 4, vtype)
                if key.startswith("tokenizer."):
                    meta[key] = value
            return meta
        finally:
            buf.release()


def gguf_tokenizer(path: str | Path) -> BPETokenizer:
    """The byte-level BPE tokenizer stored in a GGUF file (`tokenizer.ggml.model` "gpt2")."""
    meta = gguf_vocab(path)
    model, pre = meta.get("tokenizer.ggml.model"), meta.get("tokenizer.ggml.pre", "gpt-2")
    if model != "gpt2":
        raise ValueError(f"{path}: tokenizer model {model!r}; only byte-level BPE ('gpt2') is read")
    if pre not in _PRE:
        raise ValueError(f"{path}: pre-tokenizer {pre!r} is not one of {sorted(_PRE)}")
    tokens, types = meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.token_type"]
    special = [t for t, kind in zip(tokens, types, strict=True) if kind == _CONTROL]
    return BPETokenizer.from_vocab_merges(
        {t: i for i, t in enumerate(tokens)},
        meta["tokenizer.ggml.merges"],
        special_tokens=special,
        pattern=GPT2_PATTERN,
        split_digits=_PRE[pre],
    )
